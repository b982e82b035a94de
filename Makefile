# cancelflow — `make run` starts the local stack, `make test` runs everything CI runs.
# Both set themselves up on a fresh machine (a Python 3.12 is needed: pyenv's, or on PATH).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PY312 ?= $(shell (command -v pyenv >/dev/null && v=$$(pyenv versions --bare | grep -E '^3\.12(\.|$$)' | tail -1) && [ -n "$$v" ] && echo "$$(pyenv root)/versions/$$v/bin/python3.12") || command -v python3.12)
VENV := .venv
BIN := $(VENV)/bin
SAM := .venv-sam/bin/sam
CHECKOV := .venv-checkov/bin/checkov
# sam build finds the runtime's Python (python3.12) on PATH: the project venv has it.
SAM_ENV := SAM_CLI_TELEMETRY=0 PATH=$(CURDIR)/$(BIN):$$PATH
PYTEST := $(BIN)/python -m pytest

# The venvs install the locks (every package pinned with its hashes), never the top-level files:
# `make lock` compiles those into the locks. Each venv is rebuilt when its lock changes.
PIP_VERSION := 26.3
LOCK := $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.12 \
	--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)

$(BIN)/.installed: requirements-dev.lock
	@test -n "$(PY312)" || { echo "Python 3.12 not found (pyenv install 3.12, or put python3.12 on PATH)"; exit 1; }
	$(PY312) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	touch $@

$(SAM): requirements-sam.lock
	$(PY312) -m venv .venv-sam
	.venv-sam/bin/pip install --quiet pip==$(PIP_VERSION)
	.venv-sam/bin/pip install --quiet --require-hashes -r requirements-sam.lock
	touch $@

$(CHECKOV): requirements-checkov.lock
	$(PY312) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet pip==$(PIP_VERSION)
	.venv-checkov/bin/pip install --quiet --require-hashes -r requirements-checkov.lock
	touch $@

# The Swagger UI test drives Debian's chromium (Playwright's own browser download fails offline).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	$$([ "$$(id -u)" = 0 ] || echo sudo) apt-get update -qq
	$$([ "$$(id -u)" = 0 ] || echo sudo) env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium

# The console (local/console) lays out each state machine with Graphviz's dot; its Korean pages
# need a Korean font (the screenshots the browser tests keep are read by people).
DOT := /usr/bin/dot
$(DOT):
	$$([ "$$(id -u)" = 0 ] || echo sudo) apt-get update -qq
	$$([ "$$(id -u)" = 0 ] || echo sudo) env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends graphviz fonts-nanum

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: setup
setup: $(BIN)/.installed $(SAM) $(CHECKOV) $(CHROMIUM) $(DOT) ## create the venvs from the locks, install chromium and graphviz (done by the other targets when needed)

.PHONY: lock
lock: $(BIN)/.installed ## regenerate the locks from the top-level requirements files (UPGRADE=1 takes the newest versions)
	@# The layer's lock is what sam build installs for Lambda (python3.12, arm64, Amazon Linux 2023).
	$(LOCK) --python-platform aarch64-manylinux_2_28 layers/cancelflow/requirements.in \
		-o layers/cancelflow/requirements.txt
	$(LOCK) --universal requirements-dev.txt -o requirements-dev.lock
	$(LOCK) --universal requirements-sam.txt -o requirements-sam.lock
	$(LOCK) --universal requirements-checkov.txt -o requirements-checkov.lock

.PHONY: run
run: $(BIN)/.installed $(DOT) ## the local stack on 127.0.0.1: API, state machines, KCP sandbox (Ctrl-C stops)
	$(BIN)/python -m local

.PHONY: test
test: lint typecheck api-diff pytest validate security build ## everything: lint, types, API breaking changes, all tests, sam validate, security linters, sam build

.PHONY: lint
lint: $(BIN)/.installed ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: format
format: $(BIN)/.installed ## ruff format and fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: typecheck
typecheck: $(BIN)/.installed ## mypy strict: the layer, the functions, the local stack, the benches
	$(BIN)/mypy

.PHONY: pytest
pytest: $(BIN)/.installed $(CHROMIUM) $(DOT) ## unit, gateway and integration tests (the real ASL on the local stack)
	@# Two runs: unit tests' moto mock_aws resets moto's global state when it ends, which would
	@# empty the session stack of an integration test that xdist put after one in the same worker.
	$(PYTEST) -n 2 -q tests/unit
	$(PYTEST) -n 2 --dist loadfile -q tests/gateway tests/integration

.PHONY: unit
unit: $(BIN)/.installed $(DOT) ## the fast tests only
	$(PYTEST) -q tests/unit

.PHONY: validate
validate: $(SAM) ## sam validate --lint
	$(SAM_ENV) $(SAM) validate --lint --region ap-northeast-2

.PHONY: security
security: $(BIN)/.installed $(CHECKOV) ## template.yaml's security linters: cfn-lint's serverless rules and checkov (a skipped check says why, in the template)
	$(BIN)/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
	$(CHECKOV) --file template.yaml --framework cloudformation --skip-download --compact --quiet

.PHONY: build
build: $(SAM) $(BIN)/.installed ## sam build of every function and the layer (arm64, no Docker), shipped with bytecode
	$(SAM_ENV) $(SAM) build --region ap-northeast-2
	@# Lambda's /var/task and /opt are read-only: source shipped without bytecode is compiled
	@# again on every cold start. Python 3.12, as the runtime; unchecked-hash: the zip's mtimes
	@# must not invalidate it (bench/cold_imports.py measures the same way).
	$(BIN)/python -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build

.PHONY: bill
bill: $(BIN)/.installed ## charge due subscriptions on the running `make run` stack (DATE=YYYY-MM-DD, default today KST; TPS= a lower KCP rate)
	$(BIN)/python -m local.bill $(if $(DATE),--date $(DATE)) $(if $(TPS),--tps $(TPS))

.PHONY: sweep
sweep: $(BIN)/.installed ## re-inquire KCP for open cancels on the running `make run` stack and correct what its balance proves
	$(BIN)/python -m local.sweep

.PHONY: shop
shop: $(BIN)/.installed ## onboard a shop on the running `make run` stack through the operator API and print its API key (NAME= [ID=] [EMAIL=])
	@test -n "$(NAME)" || { echo 'usage: make shop NAME="My Shop" [ID=my-shop] [EMAIL=owner@my-shop.example]'; exit 1; }
	PYTHONPATH=layers/cancelflow:. $(BIN)/python -m local.shop --name "$(NAME)" $(if $(ID),--id "$(ID)") $(if $(EMAIL),--email "$(EMAIL)")

.PHONY: charge-tno
charge-tno: $(BIN)/.installed ## link a charge KCP confirmed only as a duplicate order to its tno (SUB= PERIOD= TNO= [SHOP=])
	PYTHONPATH=layers/cancelflow:. $(BIN)/python -m local.charge_tno --subscription "$(SUB)" --period "$(PERIOD)" --tno "$(TNO)" $(if $(SHOP),--shop $(SHOP))

.PHONY: reindex
reindex: $(BIN)/.installed ## after a deploy that added an index: give old cancellation records today's index keys (idempotent; STACK= [REGION=] for a deployed stack)
	PYTHONPATH=layers/cancelflow:. $(BIN)/python -m local.reindex $(if $(STACK),--stack "$(STACK)") $(if $(REGION),--region "$(REGION)")

.PHONY: trace
trace: $(BIN)/.installed ## the whole story of one cancel, subscription or billing run: record, execution history, KCP calls, emails, log lines (ID=; STACK= [REGION=] [SHOP=] for a deployed stack, with your AWS credentials)
	@test -n "$(ID)" || { echo "usage: make trace ID=<cancellation id | subscription id | billing run name>"; exit 1; }
	$(BIN)/python -m local.trace "$(ID)" $(if $(STACK),--stack "$(STACK)") $(if $(REGION),--region "$(REGION)") $(if $(SHOP),--shop "$(SHOP)")

.PHONY: openapi
openapi: $(BIN)/.installed ## regenerate openapi.json and operator-openapi.json from the code (a test fails when either drifts)
	$(BIN)/python -m local.openapi
	$(BIN)/python -m local.operator_openapi

.PHONY: api-diff
api-diff: $(BIN)/.installed ## fail on a change of openapi.json that breaks shops' clients (vs openapi.released.json), unless openapi.breaking.yaml acknowledges it
	$(BIN)/python -m local.api_diff

.PHONY: api-release
api-release: $(BIN)/.installed ## after a release: openapi.json becomes openapi.released.json, openapi.breaking.yaml is emptied
	$(BIN)/python -m local.api_diff --release

.PHONY: bench
bench: $(BIN)/.installed ## the speed and memory figures the issues ask for
	@for b in bench/*.py; do [ $$b = bench/faults.py ] && continue; echo "== $$b"; PYTHONPATH=layers/cancelflow:. $(BIN)/python $$b || exit 1; echo; done

.PHONY: faults
faults: $(BIN)/.installed ## cancels under random KCP, DynamoDB and SES faults, checked against KCP's ledger (N=10000, SEED=)
	PYTHONPATH=layers/cancelflow:. $(BIN)/python bench/faults.py --n $(or $(N),10000) $(if $(SEED),--seed $(SEED))

.PHONY: clean
clean: ## remove build output and local state
	rm -rf .aws-sam .local .pytest_cache .ruff_cache .mypy_cache
