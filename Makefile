# sekd: the two commands.
#   make demo  - install (tools/venv) and run the embedded default recipe egs/mini end to end
#   make test  - install and run the test suite
#   make bench - install and run the speed benchmark (tools/bench/run.sh; tables in docs/bench/; needs an idle machine)
VENV := tools/venv
PYTHON ?= python3
# Test worker processes (pytest-xdist), one per core; each computes on one thread (tests/conftest.py).
TEST_JOBS ?= $(shell nproc 2>/dev/null || echo 1)

.PHONY: install demo test bench clean-demo

install:
	PYTHON=$(PYTHON) tools/install.sh

demo: install
	egs/mini/run.sh

test: install
	$(VENV)/bin/python -m pytest -q -n $(TEST_JOBS) --dist loadscope tests

bench: install
	tools/bench/run.sh

clean-demo:
	rm -rf egs/mini/data egs/mini/exp
