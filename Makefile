# Two commands for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Fills DATABASE_URL / DRAMATIQ_BROKER_URL with project-owned servers under var/ when unset.
SERVICES = services="$$($(PY) -m smsplatform.embedded env)" && eval "$$services"
APPS   := smsplatform tenants compliance billing delivery

.PHONY: run test lint bench stop clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

# Ctrl-C stops the processes devstack started and then the embedded servers this run started.
run: $(VENV)/.installed
	trap '$(PY) -m smsplatform.embedded stop' EXIT; trap 'exit 130' INT TERM; $(SERVICES) && $(PY) manage.py bootstrap --demo && $(PY) manage.py seed_demo_delivery && $(PY) manage.py devstack

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(SERVICES) && $(PY) manage.py makemigrations --check --dry-run $(APPS) && $(VENV)/bin/pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(SERVICES) && $(PY) manage.py bootstrap && $(PY) bench/run_all.py $(BENCH_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

stop:
	$(PY) -m smsplatform.embedded stop

clean: stop
	rm -rf var/pgdata var/redis
