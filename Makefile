# sekd: the two commands.
#   make demo  - install (tools/venv) and run the embedded default recipe egs/mini end to end
#   make test  - install and run the test suite
VENV := tools/venv
PYTHON ?= python3

.PHONY: install demo test clean-demo

install:
	PYTHON=$(PYTHON) tools/install.sh

demo: install
	egs/mini/run.sh

test: install
	$(VENV)/bin/python -m pytest -q tests

clean-demo:
	rm -rf egs/mini/data egs/mini/exp
