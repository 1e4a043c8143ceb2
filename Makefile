# make demo   runs the demo          make test   runs the whole suite
# Each target installs what it needs: a .venv, the C build, test dependencies.

PYTHON      ?= python3
PYENV_ROOT  ?= $(HOME)/.pyenv
VENV        := .venv
PY          := $(VENV)/bin/python
STRICT      := IPY_THREADKILL_STRICT=1
# Every CPython 3.9-3.13 pyenv provides; the engine suite runs on each.
VERSIONS    := $(sort $(notdir $(wildcard $(foreach v,9 10 11 12 13,$(PYENV_ROOT)/versions/3.$(v).*))))

.PHONY: demo test test-main test-versions build soak bench lab clean

$(VENV)/.stamp: requirements/test.txt requirements/core.txt pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -r requirements/test.txt
	touch $@

build: $(VENV)/.stamp
	$(STRICT) $(PY) -m pip install -q --no-build-isolation --no-deps -e .

demo: build
	$(PY) -m ipy_threadkill.demo

test: test-main test-versions

test-main: build
	$(PY) -m pytest -q tests

# The engine suite on each interpreter, from an in-place build (.so names differ
# per version, so the builds live side by side).
test-versions:
	@test -n "$(VERSIONS)" || { echo "no CPython 3.9-3.13 under $(PYENV_ROOT)/versions"; exit 1; }
	@set -e; for v in $(VERSIONS); do \
	  venv=.venvs/$$v; \
	  if [ ! -x $$venv/bin/python ]; then $(PYENV_ROOT)/versions/$$v/bin/python3 -m venv $$venv; fi; \
	  $$venv/bin/python -m pip install -q -r requirements/core.txt; \
	  $(STRICT) $$venv/bin/python setup.py -q build_ext --inplace; \
	  echo "== CPython $$v"; \
	  PYTHONPATH=$(CURDIR) $$venv/bin/python -m pytest -q -p no:cacheprovider tests/core; \
	done

clean:
	rm -rf build .venv .venvs ipy_threadkill/*.so *.egg-info
