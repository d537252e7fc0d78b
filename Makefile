# The commands people type. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run dev test test-fast install install-dev chromium test-browser db db-stop lint format reconcile recover bench bench-contention bench-engine bench-outbox bench-login bench-scale bench-statements chaos clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev chromium

## Browser tests drive Debian's chromium through Playwright (which cannot download browsers
## here; never run `playwright install`). Installed with apt when /usr/bin/chromium is missing.
chromium:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

## Install what is missing, start the embedded database (unless MONGODB_URI is set), migrate,
## bootstrap the system user and first admin, collect static files, and serve the production
## stack (gunicorn, DEBUG off) on http://127.0.0.1:$(PORT), with the recovery sweeper and the
## outbox dispatcher beside it. Ctrl+C stops it gracefully.
run: install
	PORT=$(PORT) bash scripts/run.sh

## The same steps, then Django's development server with autoreload and DEBUG on.
dev: install
	PORT=$(PORT) bash scripts/run.sh --dev

## The suite, timed: `$(call suite,ARGS)`.
suite = start=$$(date +%s); $(VENV)/bin/pytest $(1); status=$$?; took=$$(( $$(date +%s) - start )); \
	echo "Suite finished in $$((took / 60)) min $$((took % 60)) s"; exit $$status

## Install what is missing, then lint, the format check, the import contracts (pyproject.toml)
## and the whole test suite against a real embedded server; prints how long the suite took.
test: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	@$(call suite,)

## The suite without the tests marked slow (concurrency, processes, benches), for a quick check.
test-fast: install-dev
	@$(call suite,-m "not slow")

## Only the browser suite (Playwright + chromium against a live server); screenshots in artifacts/.
test-browser: install-dev
	$(VENV)/bin/pytest tests/browser

db: install
	$(PY) -m aegis.embedded start

db-stop:
	$(PY) -m aegis.embedded stop

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

reconcile: install
	bash scripts/with_db.sh $(PY) manage.py reconcile

clean:
	rm -rf $(VENV) staticfiles

## The engine against a bare pymongo transaction, same run (see loadtest/engine_bench.py for options).
bench-engine: install-dev
	$(PY) -m loadtest.engine_bench $(BENCH_ARGS)

## The JSON API over HTTP under gunicorn vs the engine alone (see loadtest/http_bench.py).
bench: install-dev
	$(PY) -m loadtest.http_bench $(BENCH_ARGS)

## Contended transfers (10 accounts, one hot sender, one hot receiver; gate off vs on), see loadtest/contention.py.
bench-contention: install-dev
	$(PY) -m loadtest.contention $(BENCH_ARGS)

## Median API latency idle and during a burst of 50 logins from one address (see loadtest/login_burst.py).
bench-login: install-dev
	$(PY) -m loadtest.login_burst $(BENCH_ARGS)

## A consistent synthetic bank at 10k and 100k transfers (1M with BENCH_ARGS="--full"), verified by
## reconcile; one table of p50 per size and growth for every read (see loadtest/scale.py, docs/performance.md).
bench-scale: install-dev
	$(PY) -m loadtest.scale $(BENCH_ARGS)

## One account with 100,000 ledger entries (reconcile-checked): CSV and PDF statements of 10,000
## entries and the balance as-of lookup, median and p90 against their targets (see loadtest/statement_bench.py).
bench-statements: install-dev
	$(PY) -m loadtest.statement_bench $(BENCH_ARGS)

## N rounds of load + SIGKILL (web worker or database) + recovery checks (see loadtest/chaos.py).
chaos: install-dev
	$(PY) -m loadtest.chaos $(CHAOS_ARGS)

## Outbox delivery lag (created -> delivered) under steady transfer load, dispatcher in its own
## process; prints p50/p99 (see loadtest/outbox_bench.py for options, e.g. BENCH_ARGS="--rate 40").
bench-outbox: install-dev
	$(PY) -m loadtest.outbox_bench $(BENCH_ARGS)
