# lanenet: the two commands a user needs are `make demo` (the main job) and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
PYTEST := $(PY) -m pytest

.PHONY: setup test test-fast lint demo bench clean

setup:  ## create .venv: ROS 2 Kilted wheels, torch (CPU), lanenet and its messages, ros2 launch/CLI when ../shared has them (idempotent)
	@bash tools/setup_env.sh

test: setup lint  ## lint, then every test (slow ones included)
	$(PYTEST) -q -ra

test-fast: setup  ## tests not marked slow
	$(PYTEST) -q -ra -m "not slow"

lint: setup  ## ruff, and package.xml against the format-3 rules
	$(PY) -m ruff check .

demo: setup  ## synthetic drive bag -> lanenet node (ONNX Runtime, CPU) -> overlay video and report
	$(PY) -m lanenet_ros.replay.demo

bench: setup  ## benchmarks (print ratios measured side by side)
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build install log .pytest_cache .ruff_cache
