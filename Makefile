# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test chaos lint install system-deps clean bench

run: install ## start web, worker and Redis locally; Ctrl-C stops them
	bin/run

test: install lint ## install everything and run the whole test suite
	$(PY) -m pytest

chaos: install ## the fault-injection suite alone, on SQLite and PostgreSQL side by side, printing a table for each (it also runs in `make test`)
	PY=$(PY) tests/chaos/run

bench: install ## the benchmarks on loopback (about 8 minutes): the table on stdout and in var/bench/last.md
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q wrk; }
	@command -v npm >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nodejs npm; }
	$(VENV)/bin/pip install --quiet -r bench/requirements.txt
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check .

install: $(STAMP) system-deps

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "Python 3.11+ needed"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $@

system-deps: ## redis-server is started by the tests and by `make run`; chromium drives the console's browser tests
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q redis-server; }
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
