"""The trigger settings a bundle's training frames were taken with, against the node's.

A bundle's manifest may record them (``trigger.settings``: :class:`TriggerConfig` fields, see
:mod:`~tactile_grasp_predictor.bundle_manifest`). A node whose trigger picks Tb at another
moment (the node's default ``tb_delay_s`` is 0.1 s; the simulator's protocol frames are
taken about 0.75 s after the fingers settle) feeds the model frames unlike its training
frames; :func:`trigger_differences` names the fields that differ, and the node warns once
when it loads the model. Torch-free: the node imports it at start.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tactile_grasp_predictor.tracker import TriggerConfig

__all__ = ["trigger_differences"]


def trigger_differences(manifest: Mapping[str, Any] | None, config: TriggerConfig,
                        rel_tol: float = 1e-6) -> dict[str, tuple[Any, Any]]:
    """Return the trigger settings where ``config`` differs from the bundle's training frames.

    Returns ``{field: (bundle value, config value)}`` for each field the manifest's
    ``trigger.settings`` records and ``config`` sets otherwise (numbers within ``rel_tol``
    are equal); empty when they agree or the manifest records no trigger settings.

    Example:
        >>> m = {"trigger": {"settings": {"tb_delay_s": 0.75, "settle_window_s": 0.2}}}
        >>> trigger_differences(m, TriggerConfig())
        {'tb_delay_s': (0.75, 0.1)}

    """
    recorded = ((manifest or {}).get("trigger") or {}).get("settings") or {}
    out: dict[str, tuple[Any, Any]] = {}
    for name, theirs in recorded.items():
        if not hasattr(config, name):
            continue
        ours = getattr(config, name)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (theirs, ours))
        same = math.isclose(theirs, ours, rel_tol=rel_tol, abs_tol=1e-12) if numbers else theirs == ours
        if not same:
            out[name] = (theirs, ours)
    return out
