# Entry points: install, test, lint, demo, synth, bench. Every target installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
DEMO_VENV := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed
# Kion's published OpenAPI description (v3.14), which the tests hold the Kion stand-in to. The
# kion-mcp-server wheel ships it; it is fetched at install time and never committed.
KION_OPENAPI_WHEEL := kion-mcp-server==0.5.0
KION_OPENAPI := $(VENV)/kion-openapi/fixed_spec.json
# The CDK command line pinned in package.json, run from the project (never a global install).
CDK := node_modules/.bin/cdk
# Keep banners out of the way: jsii's Node 20 end-of-life notice (Node 20 still works) and the CLI's
# check for a newer version (cdk.json turns notices and telemetry off).
CDK_QUIET := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 CDK_DISABLE_VERSION_CHECK=true
# Synthesis needs neither AWS credentials nor Docker: skip the EC2 metadata probe for credentials.
CDK_ENV := $(CDK_QUIET) AWS_EC2_METADATA_DISABLED=true

# The Lambda runs Python 3.12, whose runtime may carry urllib3 1.26: `make test-lambda-py312` runs
# the function's tests there too, when a Python 3.12 is on the machine. shtab is the command
# line's own dependency: the set-kion-key tests drive the command line against the functions.
VENV312 := .venv312
PY312 := $(firstword $(foreach candidate,python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python),$(shell $(candidate) -c "import sys; print('$(candidate)' if sys.version_info[:2] == (3, 12) else '')" 2>/dev/null)))
LAMBDA_RUNTIME_PACKAGES := urllib3==1.26.20 boto3==1.44.8 aws-lambda-powertools[tracer]==3.37.0 \
	moto[server]==5.2.5 aiosmtpd==1.4.6 trustme==1.2.1 pytest==9.2.0 hypothesis==6.155.2 \
	aws-croniter==2.1.1 openapi-core==0.23.1 shtab==1.13.0

.PHONY: install build package-check test test-lambda-py312 lint docs demo synth diff deploy bench safety mutate mutate-survivors mutate-clean mutation-copy clean

install: $(PY_STAMP) $(KION_OPENAPI) $(NODE_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt requirements-docs.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -e .
	touch $@

# The wheel wants Python 3.13 to install, but only its data file is used here.
$(KION_OPENAPI): $(PY_STAMP)
	$(BIN)/python -m pip download --quiet --no-deps --python-version 3.13 --only-binary=:all: \
		--dest $(VENV)/kion-openapi $(KION_OPENAPI_WHEEL)
	$(BIN)/python -c "import glob, sys, zipfile; \
		wheel = zipfile.ZipFile(glob.glob(sys.argv[1] + '/kion_mcp_server-*.whl')[0]); \
		open(sys.argv[2], 'wb').write(wheel.read('kion_mcp/fixed_spec.json'))" \
		$(VENV)/kion-openapi $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The wheel and the sdist, in dist/.
build: $(PY_STAMP)
	rm -rf dist && mkdir -p build
	$(BIN)/python -m build --outdir dist . > build/build.log 2>&1 || { cat build/build.log; exit 1; }

# The built wheel installed outside the repository: with [cdk], a small CDK app synthesizes the
# construct; bare, the command line runs without aws-cdk-lib (.ci/package-check says more).
package-check: build
	PYTHON=$(PYTHON) .ci/package-check

# TEST_WORKERS: pytest-xdist workers (auto: one per core; 0 runs in this process). loadgroup:
# the tests that read one synthesized CDK app run on one worker (tests/cdk/conftest.py), which
# synthesizes it once; the other tests go one by one to whichever worker is free.
TEST_WORKERS ?= auto
XDIST = -n $(TEST_WORKERS) --dist loadgroup
test: install
	$(BIN)/python -m pytest $(XDIST)

# The safety suite alone (also part of `make test`): a fault at every external call of a rotation,
# bad inputs, concurrent triggers and a secret scan of all output; it ends with its figures.
# SAFETY_WORKERS: pytest-xdist workers (auto: one per core; 0 runs in this process).
SAFETY_WORKERS ?= auto
safety: $(PY_STAMP) $(KION_OPENAPI)
	$(BIN)/python -m pytest -n $(SAFETY_WORKERS) --dist loadgroup tests/safety

# Mutation testing, not in `make test` or CI (docs/development.md says how long it takes): mutmut
# mutates the rotation function's step logic in a scratch copy (build/mutation, its package under
# src/), runs the rotation and safety tests named in tests/safety/mutmut.toml against each mutant,
# and prints the score. The scratch copy is kept: a later `make mutate` refreshes the code and
# tests and goes on with the mutants not yet run (and those of functions that changed);
# `make mutate-survivors` runs the survivors again (after new tests); `make mutate-clean` starts
# over. MUTATION_WORKERS: mutants tested at once; MUTANTS: name patterns of mutants to run again
# whatever their last result, e.g. MUTANTS="ses_smtp_rotator.functions.smtp_rotation.handler.*".
MUTATION_DIR := build/mutation
MUTATION_WORKERS ?= 2
MUTANTS ?=
MUTMUT_RUN = time env KION_OPENAPI_SPEC=$(CURDIR)/$(KION_OPENAPI) \
	$(CURDIR)/$(BIN)/mutmut run --max-children $(MUTATION_WORKERS)
MUTATION_SCORE = $(CURDIR)/$(BIN)/python $(CURDIR)/tests/safety/mutation_score.py

mutate: mutation-copy
	cd $(MUTATION_DIR) && $(MUTMUT_RUN) $(MUTANTS) || true
	cd $(MUTATION_DIR) && $(MUTATION_SCORE)

mutate-survivors: mutation-copy
	cd $(MUTATION_DIR) && survivors="$$($(MUTATION_SCORE) --survivors)" && \
		if [ -n "$$survivors" ]; then $(MUTMUT_RUN) $$survivors || true; fi
	cd $(MUTATION_DIR) && $(MUTATION_SCORE)

mutate-clean:
	rm -rf $(MUTATION_DIR)

mutation-copy: $(PY_STAMP) $(KION_OPENAPI)
	rm -rf $(MUTATION_DIR)/src $(MUTATION_DIR)/tests
	mkdir -p $(MUTATION_DIR)/src $(MUTATION_DIR)/tests
	cp -r ses_smtp_rotator $(MUTATION_DIR)/src/
	cp -r tests/conftest.py tests/*_world.py tests/kion_openapi.py tests/functions tests/local \
		tests/safety $(MUTATION_DIR)/tests/
	find $(MUTATION_DIR)/src $(MUTATION_DIR)/tests -name __pycache__ -prune -exec rm -rf {} +
	cp tests/safety/mutmut.toml $(MUTATION_DIR)/pyproject.toml

test-lambda-py312: $(KION_OPENAPI)
ifeq ($(PY312),)
	@echo "test-lambda-py312: no Python 3.12 on this machine; skipped"
else
	test -x $(VENV312)/bin/python || $(PY312) -m venv $(VENV312)
	$(VENV312)/bin/python -m pip install --quiet $(LAMBDA_RUNTIME_PACKAGES)
	$(VENV312)/bin/python -m pip install --quiet --no-deps -e .
	$(VENV312)/bin/python -m pytest -p no:cacheprovider tests/functions
endif

lint: install synth
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint cdk.out/*.template.json

# Synthesize the CloudFormation template into cdk.out/, checked by cdk-nag's AWS Solutions rules
# (an unacknowledged finding, or any warning, fails it). Options in ARGS, e.g. ARGS="-c region=...".
synth: install
	$(CDK_ENV) $(CDK) synth --strict --quiet $(ARGS)

# Compare with, or deploy to, the account (AWS credentials needed; ARGS="--profile prod" etc.).
# The deployment's own stack: the access stacks of other accounts (SesSmtpRotator-Access-<account>)
# are deployed with those accounts' credentials (docs/deploying.md).
STACK ?= SesSmtpRotator
diff: install
	$(CDK_QUIET) $(CDK) diff --strict $(STACK) $(ARGS)

deploy: install
	$(CDK_QUIET) $(CDK) deploy --strict $(STACK) $(ARGS)

# The documentation site (docs/, mkdocs.yml) into site/; --strict fails on any warning, a link or
# an anchor that does not resolve included. `make docs ARGS=serve` previews it on localhost:8000.
docs: $(PY_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs $(if $(ARGS),$(ARGS),build --strict --quiet)

# Two real rotations on loopback stand-ins of AWS, SES SMTP and Kion, then a proof of the outcome.
# Needs Python only. Options go in ARGS, e.g. make demo ARGS="--kion-url https://kion.staging.example"
# The demo has a virtual environment of its own with only what it runs (requirements-demo.txt),
# not the development toolchain, so a fresh clone starts it quickly: one pip run installs the
# pinned wheels and the project; --no-compile leaves bytecode to the modules the demo imports
# (moto has ~150 services, the demo uses 8). When this Python's own pip can install into another
# environment (pip >= 22.3, --python), the venv is made without a pip of its own (no ensurepip).
DEMO_PIP_INSTALL := install --quiet --prefer-binary --no-compile -r requirements-demo.txt -e .
demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/python -m ses_smtp_rotator.demo $(ARGS)

$(DEMO_STAMP): requirements-demo.txt pyproject.toml
	$(PYTHON) -m venv --without-pip $(DEMO_VENV)
	if $(PYTHON) -m pip --python $(DEMO_VENV)/bin/python --version >/dev/null 2>&1; then \
		$(PYTHON) -m pip --python $(DEMO_VENV)/bin/python $(DEMO_PIP_INSTALL); \
	else \
		$(PYTHON) -m venv $(DEMO_VENV) && $(DEMO_VENV)/bin/python -m pip $(DEMO_PIP_INSTALL); \
	fi
	touch $@

# Prints P1-P4 (import time, overhead, propagation wait, calls per rotation) beside their goals.
# Figures, not tests: it never fails because a machine is slow.
bench: $(PY_STAMP)
	$(BIN)/python -m benchmarks $(ARGS)

clean:
	rm -rf $(VENV) $(VENV312) $(DEMO_VENV) node_modules cdk.out dist site .pytest_cache .ruff_cache
