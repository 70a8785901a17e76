# trace30 — `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

.PHONY: help install run test bench lint clean nginx browser pdf
.PHONY: promtool settings-table

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install trace30 with its test tools

run: $(STAMP) ## start the suite under gunicorn (TRACE30_SANDBOX=1: with the simulators)
	$(VENV)/bin/trace30 run

test: $(STAMP) nginx browser pdf promtool ## run the whole test suite (needs Redis on :6379 and PostgreSQL on :5432)
	$(PY) -m pytest

# tests/deploy/test_edge.py runs the real nginx in front of the gateway (deploy/nginx/); CI and
# fresh machines don't have it, so install Debian's package (the binary is /usr/sbin/nginx).
nginx: ## install nginx for the reverse-proxy tests when it is missing (Debian, as root)
	@PATH="$$PATH:/usr/sbin:/sbin" command -v nginx >/dev/null || \
	  (apt-get update && apt-get install -y --no-install-recommends nginx)

# tests/browser/ drive the dashboard with Playwright for Python in the system's headless Chromium
# (Debian's package, /usr/bin/chromium): `playwright install` downloads a browser, which neither
# CI nor this project does.
browser: ## install Chromium for the browser tests when it is missing (Debian, as root)
	@test -x /usr/bin/chromium || \
	  (apt-get update && apt-get install -y --no-install-recommends chromium)

# Disclosure reports (services/gateway/disclosures.py) are printed to PDF by WeasyPrint, which
# loads Pango (and HarfBuzz, fontconfig) from the system; DejaVu gives it a font to print with.
pdf: ## install WeasyPrint's system libraries when they are missing (Debian, as root)
	@(ldconfig -p | grep -q 'libpangoft2-1.0.so.0' && fc-list 2>/dev/null | grep -qi dejavu) || \
	  (apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 \
	   libpangoft2-1.0-0 libharfbuzz-subset0 fontconfig fonts-dejavu-core)

BENCHES := vat_overhead registry_formats payment_throughput gateway batch_follow batch chain tracing metrics_overhead
BENCHES += client_limits

bench: $(STAMP) ## run the benchmarks in bench/ and print their figures (needs Redis)
	@for b in $(BENCHES); do echo "== bench/$$b.py"; $(PY) bench/$$b.py || exit 1; done

settings-table: $(STAMP) ## write README.md's settings table again from shared/config.py
	$(PY) -c "from pathlib import Path; from shared.config import rewrite_readme_table as r; p = Path('README.md'); p.write_text(r(p.read_text()))"

lint: $(STAMP) ## ruff and mypy (CI runs this after the tests)
	$(PY) -m pip install --quiet -e '.[test,dev]'
	$(VENV)/bin/ruff check . && $(VENV)/bin/mypy shared services simulators trace30

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache

# tests/deploy/test_monitoring.py checks deploy/prometheus/ (the alert rules, their unit tests,
# the scrape configuration) with promtool, from Debian's package prometheus.
promtool: ## install promtool for the monitoring tests when it is missing (Debian, as root)
	@command -v promtool >/dev/null || \
	  (apt-get update && apt-get install -y --no-install-recommends prometheus)
