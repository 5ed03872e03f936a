# The two commands of the README, plus the install they both start with.
#   make demo   the project's main job on generated demo data
#   make test   the test suite (what CI runs)
VENV ?= .venv
export VSSD_MM_VENV := $(abspath $(VENV))
PY := $(VSSD_MM_VENV)/bin/python

.PHONY: install test demo
install:
	@bash tools/install.sh

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

demo: install
	$(PY) tools/demo.py
