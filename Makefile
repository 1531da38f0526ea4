# The README's commands. `make setup` is called by the others and is fast when nothing changed.
VENV   := .venv
PY     := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup test lint typecheck demo bench fuzz clean

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

# Hostile inputs, 10,000 cases per class, two classes at a time (docs/robustness.md: numbers, time).
fuzz: setup
	PYTHONPATH=test $(PY) -m helpers.fuzz_run --cases 10000 --jobs 2 --out fuzz-report

clean:
	rm -rf ros2_ws/build ros2_ws/install ros2_ws/log .pytest_cache .mypy_cache .ruff_cache
