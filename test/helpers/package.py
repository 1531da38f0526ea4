"""Facts about the package as declared in the repository (read, not installed or run)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository


def console_scripts() -> dict[str, str]:
    """executable → module, from setup.py's console_scripts entry points (parsed, not run)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    scripts: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "console_scripts":
                    assert isinstance(value, ast.List)
                    for entry in (ast.literal_eval(elt) for elt in value.elts):
                        parts = entry.split("=")
                        scripts[parts[0].strip()] = parts[1].split(":")[0].strip()
    assert scripts, "setup.py declares no console scripts"
    return scripts
