# make demo   runs the demo          make test   runs the whole suite
# Each target installs what it needs: a .venv, the C build, test dependencies.

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
STRICT      := IPY_THREADKILL_STRICT=1

.PHONY: demo lab test test-main test-versions test-kernel-versions test-early interpreters browser-deps build \
        soak bench sanitize clean

$(VENV)/.stamp: requirements/test.txt requirements/core.txt pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -r requirements/test.txt
	touch $@

build: $(VENV)/.stamp
	$(STRICT) $(PY) -m pip install -q --no-build-isolation --no-deps -e .

# The demo notebook, executed headless by nbclient against a real kernel; it
# prints the thread table before and after the kills.
demo: build
	$(PY) tools/run_demo.py

# The same notebook in JupyterLab, to click the Kill buttons yourself.
lab: build
	$(VENV)/bin/jupyter lab --allow-root notebooks/demo.ipynb

# The engine suite (tests/core) runs under test-versions, on every interpreter;
# sanitize runs the kill suites again with the C core under ASan and UBSan.
test: interpreters test-main test-versions test-kernel-versions test-early sanitize

test-main: build browser-deps
	$(PY) -m pytest -q tests --ignore=tests/core

# Debian's Chromium for the browser tests (installed only when missing).
browser-deps:
	sh tools/install-chromium.sh

bench: build
	$(PY) benchmarks/kill_latency.py
	$(PY) benchmarks/snapshot.py
	$(PY) benchmarks/widget.py
	$(PY) benchmarks/time_limit.py
	$(PY) benchmarks/time_limit_compare.py --markdown

# Every interpreter tools/interpreters.txt lists, set up (or said why not) from
# Debian's archive and cached outside the checkout: minutes the first time,
# under a second after. tools/interpreters.sh --refresh upgrades the sid root.
interpreters:
	bash tools/interpreters.sh

# The engine suite on every interpreter tools/interpreters.txt claims; one alone:
# tools/each-python.sh --only 3.14 python -m pytest -q -p no:cacheprovider tests/core
test-versions: interpreters
	bash tools/each-python.sh python -m pytest -q -p no:cacheprovider tests/core

# The real-kernel tests (a kernel, the magics and the widget in it) also on the
# interpreters beyond the main one whose venv can install the kernel stack here
# (free-threaded 3.13: no pyzmq); the browser tests stay on the main interpreter.
KERNEL_VERSIONS := 3.14
KERNEL_TESTS    := tests/test_kernel.py tests/test_magics.py tests/test_widget.py \
                   tests/test_snapshot_kernel.py tests/test_autostop.py
test-kernel-versions: interpreters
	bash tools/each-python.sh --if-present --only $(KERNEL_VERSIONS) --requirements requirements/kernel.txt \
	    python -m pytest -q -p no:cacheprovider $(KERNEL_TESTS)

# The engine suite on the pre-releases tools/interpreters.txt lists as early (an
# early warning): its result is shown, and never fails the run.
EARLY_VERSIONS := $(shell sed -e 's/\#.*//' tools/interpreters.txt | awk '$$3 == "early" {print $$1}')
test-early: interpreters
	@if [ -n "$(EARLY_VERSIONS)" ]; then \
	    bash tools/each-python.sh -k $(addprefix --only ,$(EARLY_VERSIONS)) \
	        python -m pytest -q -p no:cacheprovider tests/core \
	    || echo "test-early: failed on a pre-release (an early warning, not a failure)"; fi

# The kill, force, race, hostile and bad-input suites with the C core under
# AddressSanitizer and UBSan, on CPython 3.11 and 3.13 (tools/sanitize.sh).
sanitize:
	sh tools/sanitize.sh

# Minutes: the soak at full size on every interpreter, then 200 kills through
# %killthread in a real kernel (make test runs the quick size).
soak: build interpreters
	bash tools/each-python.sh python -m tests.soak
	$(PY) -m pytest -q -p no:cacheprovider tests/test_kernel_soak.py

clean:
	rm -rf build .venv .venvs ipy_threadkill/*.so *.egg-info
