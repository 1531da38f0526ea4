"""The package's exceptions. Each message names the file, trial, topic or field at fault."""

from __future__ import annotations


class TgpError(Exception):
    """Base class of every error this package raises on bad input."""


class DatasetError(TgpError, ValueError):
    """A dataset file or trial is missing, truncated, or not in the expected layout."""


class BundleError(TgpError, ValueError):
    """A model bundle is missing, corrupt, of an unknown version, or fails its hashes."""


class FrameError(TgpError, ValueError):
    """A tactile frame cannot be used (encoding, size, dtype, channels)."""


class BagError(TgpError, ValueError):
    """A rosbag2 recording is unreadable or lacks what an evaluation needs."""


class ConfigError(TgpError, ValueError):
    """A configuration value (YAML field, parameter, CLI option) is invalid."""


class ModelError(TgpError, ValueError):
    """A model gave something other than a probability (NaN, inf, outside [0, 1])."""
