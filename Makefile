# Shopstack. Every target calls shopctl or a tool in the project's virtualenv
# (.cache/venv, created on first use); `make help` lists them.
PYTHON ?= python3
VENV := .cache/venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SERVICE_PACKAGES := -e services/kit -e services/auth -e services/cart -e services/orders -e services/payments -e infra/psp

.DEFAULT_GOAL := help
.PHONY: help up down status logs test lint format unit static integration verify load load-ui flash-sale capacity chaos chaos-all replay-dlq bench bench-auth bench-checkout dashboards generate clean

help: ## List every target with what it does
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  \1\t/' | expand -t 18

$(STAMP): requirements-dev.txt loadtest/requirements.txt services/*/pyproject.toml infra/psp/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(SERVICE_PACKAGES) -r requirements-dev.txt
	touch $(STAMP)

up: $(STAMP) ## Start the whole stack (Docker mode if an engine answers, else local mode)
	$(PY) -m shopctl up

down: $(STAMP) ## Stop the whole stack; leaves no process or listening port
	$(PY) -m shopctl down

status: $(STAMP) ## Table of every process: state, readiness, memory (RSS)
	$(PY) -m shopctl status

logs: $(STAMP) ## Follow logs (all, or SERVICE=cart for one service's instances)
	$(PY) -m shopctl logs --service "$(SERVICE)"

test: lint ## Everything CI runs: lint, then unit, Docker-mode and integration tests in one pytest run
	$(PY) -m pytest tests --durations=25

lint: $(STAMP) ## ruff (lint and format check) and mypy --strict on services/ and shopctl/
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

generate: $(STAMP) ## Write the Grafana dashboards (infra/grafana/dashboards) and the SLO burn-rate rules (infra/prometheus/rules/slo.yml)
	$(PY) -c 'from shopctl.grafana import write; [print(p) for p in write()]'
	$(PY) -c 'from shopctl.slo_rules import write; print(write())'

format: $(STAMP) ## Apply ruff's fixes and formatting
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

unit: $(STAMP) ## Unit tests (no servers)
	$(PY) -m pytest -m "unit and not static" tests/unit

static: $(STAMP) ## Docker-mode files checked without an engine: hadolint, compose validation, parity
	$(PY) -m pytest -m static tests/unit

integration: $(STAMP) ## Integration tests against a real local stack they start and stop on shifted ports
	$(PY) -m pytest -m integration tests/integration

verify: $(STAMP) ## Check the invariants (orders terminal, one capture per order, money and stock add up)
	$(PY) -m shopctl verify

load: $(STAMP) ## Locust through the gateway, PASS/FAIL against slo.yml, then verify (PROFILE=smoke|steady|spike|soak, USERS, SPAWN_RATE, DURATION)
	$(PY) -m shopctl load --profile "$(PROFILE)" --users "$(USERS)" --spawn-rate "$(SPAWN_RATE)" --duration "$(DURATION)"

load-ui: $(STAMP) ## Locust's web UI on the same journeys (PROFILE sets its starting users)
	$(PY) -m shopctl load-ui --profile "$(PROFILE)" --users "$(USERS)" --spawn-rate "$(SPAWN_RATE)"

flash-sale: $(STAMP) ## BUYERS (200) check out the last STOCK (50) units of one product at once; exactly the stock sells, then verify
	$(PY) -m shopctl flash-sale --buyers "$(BUYERS)" --stock "$(STOCK)"

capacity: $(STAMP) ## Highest open-loop checkout rate with POST-to-CONFIRMED p99 <= 500 ms and no errors (DURATION: seconds a step)
	$(PY) -m shopctl capacity --duration "$(DURATION)"

chaos: $(STAMP) ## List the chaos experiments, or run one under load: EXP=kafka-down [HOLD=seconds]
	$(PY) -m shopctl chaos --exp "$(EXP)" --hold "$(HOLD)"

chaos-all: $(STAMP) ## Every chaos experiment under load, then a report (.run/chaos/<time>/report.{md,html})
	$(PY) -m shopctl chaos-all --hold "$(HOLD)"

replay-dlq: $(STAMP) ## Send dead-lettered events back to their topic (TOPIC=order-events.dlq)
	$(PY) -m shopctl replay-dlq --topic "$(TOPIC)"

bench: $(STAMP) ## wrk on two ceilings (nginx; nginx + 2 bare FastAPI) and the gateway's read and write, then checkout capacity; results in .run/bench (DURATION=10 STEP=10 CHECKOUT=0)
	$(PY) -m shopctl bench --duration "$(DURATION)" --step "$(STEP)" --checkout "$(CHECKOUT)"

bench-auth: $(STAMP) ## Login cost: argon2id hashes/s and median login latency vs a baseline (needs `make up`)
	PYTHONPATH=. $(PY) loadtest/auth_bench.py

bench-checkout: $(STAMP) ## End-to-end checkout: orders/s and POST-to-CONFIRMED median and p99 (needs `make up`)
	PYTHONPATH=. $(PY) loadtest/checkout_bench.py

dashboards: $(STAMP) ## Print each Grafana dashboard's URL (Grafana, or local mode's page) and open the first
	$(PY) -m shopctl dashboards

clean: $(STAMP) ## Stop the stack and delete its data (.run, Docker volumes); caches in .cache stay
	$(PY) -m shopctl clean
