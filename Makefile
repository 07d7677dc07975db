# The two commands that matter: `make run` (the portal with demo data) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
UV ?= $(VENV)/bin/uv
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.lock | cut -c1-12)

.PHONY: run test bench soak soak-short lint lock migrate demo-data clean

$(STAMP): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

# The demo's own commands run with DEBUG on, as demo.env has it (the portal's default is off).
migrate demo-data run: export DEBUG ?= 1

migrate: $(STAMP)
	$(PY) manage.py migrate --no-input

# The built-in starter catalog and the bundled manifests: enough to work offline.
demo-data: migrate
	$(PY) manage.py import_catalog --starter
	$(PY) manage.py import_manifest permissions/manifests/*.yaml

# Where `make run` listens; another pair runs a second demo beside the first:
# `make run PORTAL_BIND=127.0.0.1:9000 EMULATOR_PORT=9443`.
PORTAL_BIND ?= 127.0.0.1:8000
EMULATOR_PORT ?= 8443
RUN_ENV := var/run.env

# The emulator (demo tenants), a Celery worker and beat, and the web server; the web
# process first onboards and syncs the demo tenants. Ctrl-C stops all of them, and is no
# error (honcho then exits 130, which make would report as one).
run: demo-data
	@mkdir -p $(dir $(RUN_ENV))
	@printf '%s\n' "PORTAL_BIND=$(PORTAL_BIND)" "EMULATOR_PORT=$(EMULATOR_PORT)" \
		"PORTAL_URL=http://$(PORTAL_BIND)" "GRAPH_URL=https://127.0.0.1:$(EMULATOR_PORT)" \
		"ENTRA_LOGIN_URL=https://127.0.0.1:$(EMULATOR_PORT)" > $(RUN_ENV)
	@echo "Starting the Permission Portal demo on http://$(PORTAL_BIND) (Ctrl-C stops it) ..."
	@$(VENV)/bin/honcho start -f Procfile -e demo.env,$(RUN_ENV) || [ $$? -eq 130 ]

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# Both locks at the newest releases pyproject.toml allows: the development one, then the
# production image's, which pins the same versions without the dev extra (needs uv:
# `pip install uv`).
lock:
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 --upgrade -o requirements.lock
	$(UV) pip compile pyproject.toml --python-version 3.11 -c requirements.lock -o requirements.runtime.lock

bench: $(STAMP)
	$(PY) -m benchmarks

# The production topology on loopback under load and faults (README, Soak): gunicorn,
# two Celery workers and beat, its own Redis and PostgreSQL (ports 9150-9169), the
# emulator. `soak` takes about 10 minutes; `soak-short` (CI) about 3.
soak: $(STAMP)
	$(PY) -m soak

soak-short: $(STAMP)
	$(PY) -m soak --short

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	# django-stubs loads the settings, which without DEBUG demand a production SECRET_KEY.
	DEBUG=1 $(VENV)/bin/mypy .

clean:
	rm -rf $(VENV) var
