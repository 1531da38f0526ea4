# The README's commands. `make setup` is called by the others and is fast when nothing changed.
VENV   := .venv
PY     := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup test lint typecheck demo bench clean

setup:
	@bash scripts/setup_env.sh

lint: setup
	$(VENV)/bin/ruff check .

typecheck: setup
	$(VENV)/bin/mypy tactile_grasp_predictor training

test: setup lint typecheck
	$(PY) -m pytest test

demo: setup
	$(VENV)/bin/tgp demo

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf ros2_ws/build ros2_ws/install ros2_ws/log .pytest_cache .mypy_cache .ruff_cache
