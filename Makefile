# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test check chaos lint install system-deps clean bench

run: install ## start web, worker and Redis locally; Ctrl-C stops them
	bin/run

test: install lint ## install everything and run the whole test suite (the fault suite last, both stores side by side)
	$(PY) -m pytest -m "not chaos"
	PY=$(PY) tests/chaos/run

check: install lint ## the quick loop: lint and every test that starts no whole process, on both cores
	$(PY) -m pytest -q -n 2 -m "not slow and not chaos"

chaos: install ## the fault-injection suite alone, on SQLite and PostgreSQL side by side, printing a table for each (it also runs in `make test`)
	PY=$(PY) tests/chaos/run

bench: install ## the benchmarks on loopback (about 10 minutes): the table on stdout and in var/bench/last.md
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q wrk; }
	@command -v npm >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nodejs npm; }
	$(VENV)/bin/pip install --quiet -r bench/requirements.txt
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check .

install: $(STAMP) system-deps

$(STAMP):  # no prerequisite: its name carries requirements.txt's checksum, a fresh clone's newer file is no change
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "Python 3.11+ needed"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $@

system-deps: ## redis-server is started by the tests and by `make run`; chromium drives the console's browser tests;
# nginx, systemd-analyze, sqlite3 and openssl check deploy/ (tests/test_deploy.py)
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q redis-server; }
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }
	@PATH="$$PATH:/usr/sbin:/sbin" command -v nginx >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nginx; }
	@command -v systemd-analyze >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q systemd; }
	@command -v sqlite3 >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q sqlite3; }
	@command -v openssl >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q openssl; }

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
