# The two commands: `make demo` and `make test`. Both set up everything on first use.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
# The demo runs against the local simulators: their built-in app credentials, never real ones.
DEMO_ENV := DEBUG=true EXACT_CLIENT_ID=sim-client-id EXACT_CLIENT_SECRET=sim-client-secret \
	EXACT_WEBHOOK_SECRET=sim-webhook-secret

.PHONY: install test demo lint bench chaos lock simulate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reproducible installs: requirements.lock pins every package (regenerate with `make lock`).
$(STAMP): $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# pytest exits 5 when it collected nothing: that must fail loudly, never pass quietly.
test: install
	@$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "ERROR: pytest collected no tests" >&2; exit 1; fi; \
	exit $$status

# ruff, then the import contracts of pyproject.toml (layers, exact/gocardless independent, no
# product import of the simulators or the demo, no cycles between a package's modules).
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Starts both simulators (stopped again when runserver exits), migrates, creates the demo
# login and tenant, runs the product end to end (demo_run prints a summary), serves the admin.
demo: install
	@$(DEMO_ENV) PYTHON=$(BIN)/python bash scripts/demo.sh

simulate: install
	$(DEMO_ENV) $(BIN)/python manage.py simulate --auto-consent

# Every bench/*.py, each printing ratios against the API limits (bench/collect.py included:
# 5,000 invoices at 1,000 requests/minute take 5+ minutes; BENCH_COLLECT_N=500 scales it down;
# bench/many_tenants.py: 200 companies in three scenarios on PostgreSQL and Redis db 5, ~20
# minutes; BENCH_TENANTS=20 scales it down, BENCH_TENANTS=1000 is the large variant).
# Every bench runs even when one misses a target; the misses are listed at the end.
bench: install
	@missed=""; for script in bench/*.py; do \
		case "$$(basename $$script)" in _*|__init__.py) continue;; esac; \
		echo "== $$script"; $(BIN)/python $$script || missed="$$missed $$script"; \
	done; \
	if [ -n "$$missed" ]; then echo "== missed a target:$$missed"; exit 1; fi

# The month under faults (tests/chaos, docs/chaos.md): the fault-free month, then the month
# under faults for each seed, each compared with it; a failing seed prints itself for replay.
# `make chaos SEED=7`, or several: `make chaos SEEDS="1 2 3"`. Each month starts PostgreSQL and
# Redis servers of its own (the machine's are never restarted) and needs libfaketime.
SEED ?= 1
SEEDS ?= $(SEED)
chaos: install
	@command -v faketime >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get install -y -qq faketime >/dev/null; } || { \
		echo "make chaos needs libfaketime: apt-get install faketime" >&2; exit 1; }
	@MLC_CHAOS_SEEDS="$(SEEDS)" $(BIN)/pytest tests/chaos/test_month.py -s -q -p no:cacheprovider

# Re-resolve the pins from pyproject.toml (run after changing dependencies, then commit).
lock: $(BIN)/python
	$(BIN)/python -m pip install -q '.[test]'
	$(BIN)/python -m pip uninstall -q -y ml-connector
	$(BIN)/python -m pip freeze --exclude-editable > requirements.lock

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache
