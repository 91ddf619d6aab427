# The two set-up commands of the README: `make demo` and `make test`. Each installs everything it needs.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: setup data postgres browser demo test test-fast bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: the CPU wheel on this machine's disk (an unpinned torch pulls CUDA builds).
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed data

# Fashion-MNIST from Debian's package when it is missing and we are root; TRAINWELL_DATA or --data-dir otherwise.
data:
	@if [ ! -f $(FMNIST) ] && [ -z "$$TRAINWELL_DATA" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -qq dataset-fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)); \
	  else echo "Fashion-MNIST missing: run 'sudo apt-get install dataset-fashion-mnist' or set TRAINWELL_DATA"; fi; \
	fi

# PostgreSQL for the search test across "machines" (the test starts its own server on loopback, in a
# temporary folder; the system's cluster is left alone).
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    (apt-get install -y -qq postgresql || (apt-get update -qq && apt-get install -y -qq postgresql)); \
	  else echo "PostgreSQL missing: run 'sudo apt-get install postgresql' (the search tests need it)"; fi; \
	fi

# Chromium for the report tests (headless, driven by Playwright; Playwright's own browser download is not used).
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    (apt-get install -y -qq chromium || (apt-get update -qq && apt-get install -y -qq chromium)); \
	  else echo "Chromium missing: run 'sudo apt-get install chromium' (the report tests need it)"; fi; \
	fi

demo: setup
	$(VENV)/bin/trainwell train --name demo-$$(date +%Y%m%d-%H%M%S)

test: setup postgres browser
	$(PY) -m pytest -q

test-fast: setup browser
	$(PY) -m pytest -q -m "not slow"

bench: setup
	$(PIP) install -q -e '.[bench]'
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/ab_step.py
	$(PY) benchmarks/small_data.py --seeds 0,1,2
	$(PY) benchmarks/time_to_accuracy.py
	$(PY) benchmarks/augment.py

clean:
	rm -rf $(VENV) runs
