"""Point the ROS 2 wheels' CMake files at this venv's Python and NumPy headers.

The Kilted wheels on PyPI were built in a manylinux container; their exported
CMake targets (``share/**/*.cmake``) still name that container's include
directories, e.g. ``/opt/python/cp311-cp311/include/python3.11`` and
``/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include``.
CMake refuses targets whose include directories do not exist, so
``rosidl_generate_interfaces`` fails until those paths name real directories.

This script rewrites them in place to the running interpreter's include
directory and NumPy's include directory. It is idempotent: a second run finds
nothing to change. Usage: ``python scripts/fix_ros_wheel_cmake.py [PREFIX]``
(default: ``sys.prefix``).
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

import numpy

# /opt/python/cp311-cp311 followed by either the NumPy include or the Python include.
_BUILD_PREFIX = r"/opt/python/cp3\d+-cp3\d+"
_NUMPY_INCLUDE = re.compile(_BUILD_PREFIX + r"/lib/python3\.\d+/site-packages/numpy/(?:_core|core)/include")
_PYTHON_INCLUDE = re.compile(_BUILD_PREFIX + r"/include/python3\.\d+")


def fix_file(path: Path, python_include: str, numpy_include: str) -> bool:
    """Rewrite one CMake file; return True when it changed."""
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    new = _NUMPY_INCLUDE.sub(numpy_include, text)
    new = _PYTHON_INCLUDE.sub(python_include, new)
    if new == text:
        return False
    path.write_text(new, encoding="utf-8", errors="surrogateescape")
    return True


def main(argv: list[str]) -> int:
    prefix = Path(argv[1]) if len(argv) > 1 else Path(sys.prefix)
    python_include = sysconfig.get_paths()["include"]
    numpy_include = numpy.get_include()
    for needed in (python_include, numpy_include):
        if not Path(needed, "Python.h" if needed == python_include else "numpy").exists():
            print(f"fix_ros_wheel_cmake: missing headers in {needed}", file=sys.stderr)
            return 1
    cmake_files = sorted((prefix / "share").rglob("*.cmake"))
    changed = [p for p in cmake_files if fix_file(p, python_include, numpy_include)]
    print(f"fix_ros_wheel_cmake: rewrote {len(changed)} CMake file(s) under {prefix / 'share'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
