# Two commands that work on a fresh machine with Python >= 3.10 and pip:
#   make run    the main job on the embedded default model
#   make test   linter, type check (mypy, files in pyproject.toml), the documentation site
#               (make docs) + test suite, which checks the site in headless Chromium
# Both create .venv and install the package with the pinned versions of constraints.txt.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= all,test
STAMP := $(VENV)/.installed-$(EXTRAS)

export OMP_NUM_THREADS ?= 1

# universal MLIPs that ship their weights (sevenn, chgnet) need e3nn >= 0.5, mace-torch pins
# 0.4.4: they live in a second environment, pinned by constraints-universal.txt
UVENV := .venv-universal
UBIN := $(UVENV)/bin
USTAMP := $(UVENV)/.installed-universal

.PHONY: run test test-fast lint docs bench clean universal-env

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

$(UBIN)/python:
	$(PYTHON) -m venv $(UVENV)

$(USTAMP): pyproject.toml constraints-universal.txt | $(UBIN)/python
	$(UBIN)/python -m pip install --quiet -c constraints-universal.txt -e '.[universal,test]'
	touch $(USTAMP)

universal-env: $(USTAMP)

run: $(STAMP)
	$(BIN)/ase-bodyorder demo

lint: $(STAMP)
	$(BIN)/ruff check ase_bodyorder tests benchmarks examples docs
	$(BIN)/ruff format --check ase_bodyorder tests benchmarks examples docs
	$(BIN)/mypy

# the documentation site (docs/ -> docs/_build/html): warnings are errors, and every
# example of the gallery (examples/) runs; -E: every page read again (a changed chemiscope
# dataset is copied even when its page did not change)
docs: $(STAMP)
	rm -rf docs/_build/screenshots
	$(BIN)/python -m sphinx -E -W --keep-going -q -b html docs docs/_build/html

# the suite includes tests/docs, the built site checked in headless Chromium; its
# screenshots (docs/_build/screenshots) say that the check ran
test: lint docs $(USTAMP)
	$(BIN)/python -m pytest -q
	@test "$$(ls docs/_build/screenshots/*.png 2>/dev/null | wc -l)" -ge 4 || { echo \
	  "make test: the browser check of the site did not run (needs Debian's chromium and chromium-driver)"; exit 1; }
	$(UBIN)/python -c "import sevenn, chgnet"  # the universal-model tests must not skip
	$(UBIN)/python -m pytest -q tests/universal

# a development subset: the tests not marked slow (no training, no i-PI run)
test-fast: lint
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_expansion.py

clean:
	rm -rf $(VENV) build *.egg-info docs/_build docs/gallery docs/sg_execution_times.rst
