#!/usr/bin/env bash
# `make setup`: the whole environment on a machine without a system ROS 2.
#
#   .venv/            pinned Python deps (torch, ROS 2 Kilted wheels, colcon, ...),
#                     tactile_grasp_msgs built by colcon into the venv's own prefix
#                     (the ROS wheels' bootstrapper puts <venv>/lib on the library path,
#                     so nothing needs sourcing), and this project installed editable
#                     (`tgp`, the nodes).
#   .venv-fixtures/   NumPy < 2 + flammkuchen: writes/reads files in the dataset's
#                     deepdish layout for tests (flammkuchen fails under NumPy 2).
#
# Each step is skipped when the inputs it depends on have not changed (stamp files
# hold a hash of those inputs), so a second run takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
FIXVENV=.venv-fixtures

hash_of() { cat "$@" | sha256sum | cut -c1-16; }
stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
say() { printf '[setup] %s\n' "$*"; }
# pip warns once per package about a local index folder this machine's pip.conf names;
# drop that noise, keep everything else (pipefail keeps pip's exit status).
quiet_pip() { "$@" 2>&1 | { grep -v "^WARNING: Location 'file://" || true; }; }

[ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
PIP="$VENV/bin/python -m pip --disable-pip-version-check"

# 1. Python dependencies, then the CMake path fix on the ROS wheels.
req_hash=$(hash_of requirements/torch.txt requirements/ros.txt requirements/workstation.txt \
                   requirements/dev.txt scripts/fix_ros_wheel_cmake.py)
if ! stamp_ok "$VENV/.stamp-deps" "$req_hash"; then
  say "installing pinned dependencies (torch installs from local disk, ~1-2 min)"
  quiet_pip $PIP install -q --upgrade pip
  quiet_pip $PIP install -q -r requirements/torch.txt -r requirements/ros.txt \
                  -r requirements/workstation.txt -r requirements/dev.txt
  "$VENV/bin/python" scripts/fix_ros_wheel_cmake.py "$VENV"
  echo "$req_hash" > "$VENV/.stamp-deps"
fi

# 2. The interface package, built with colcon into the venv prefix.
msgs_hash=$(hash_of "$VENV/.stamp-deps" $(find ros2_ws/src/tactile_grasp_msgs -type f | sort))
if ! stamp_ok "$VENV/.stamp-msgs" "$msgs_hash"; then
  say "building ros2_ws/src/tactile_grasp_msgs with colcon (~15 s)"
  rm -rf ros2_ws/build/tactile_grasp_msgs
  PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/colcon" --log-base ros2_ws/log build \
      --base-paths ros2_ws/src --packages-select tactile_grasp_msgs \
      --build-base ros2_ws/build --install-base "$VENV" --merge-install \
      --event-handlers console_direct- > ros2_ws/colcon-build.log 2>&1 \
    || { tail -40 ros2_ws/colcon-build.log; say "colcon build failed (ros2_ws/colcon-build.log)"; exit 1; }
  echo "$msgs_hash" > "$VENV/.stamp-msgs"
fi

# 3. This project, editable (console scripts land in .venv/bin).
proj_hash=$(hash_of "$VENV/.stamp-deps" setup.py setup.cfg pyproject.toml package.xml)
if ! stamp_ok "$VENV/.stamp-project" "$proj_hash"; then
  say "installing tactile_grasp_predictor (editable)"
  quiet_pip $PIP install -q --no-deps --no-build-isolation -e .
  echo "$proj_hash" > "$VENV/.stamp-project"
fi

# 4. The fixtures venv (NumPy < 2, flammkuchen).
fix_hash=$(hash_of requirements/fixtures.txt)
if ! stamp_ok "$FIXVENV/.stamp-deps" "$fix_hash"; then
  say "creating $FIXVENV (flammkuchen, NumPy < 2)"
  [ -x "$FIXVENV/bin/python" ] || "$PYTHON" -m venv "$FIXVENV"
  quiet_pip "$FIXVENV/bin/python" -m pip --disable-pip-version-check install -q -r requirements/fixtures.txt
  echo "$fix_hash" > "$FIXVENV/.stamp-deps"
fi
say "ready: $VENV ($("$VENV/bin/python" -c 'import torch, rclpy; print("torch", torch.__version__)'))"
