# Entry points: install, test, lint, demo, synth, bench. Every target installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# The CDK command line pinned in package.json, run from the project (never a global install).
CDK := node_modules/.bin/cdk
# Synthesis needs neither AWS credentials nor Docker; keep jsii's Node end-of-life banner and
# the EC2 metadata probe for credentials out of the way.
CDK_ENV := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 AWS_EC2_METADATA_DISABLED=true

.PHONY: install test lint demo synth bench safety clean

install: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -e .
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: install
	$(BIN)/python -m pytest

lint: install synth
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint cdk.out/*.template.json

# Synthesize the CloudFormation template into cdk.out/, checked by cdk-nag's AWS Solutions rules
# (an unacknowledged finding, or any warning, fails it).
synth: install
	$(CDK_ENV) $(CDK) synth --strict --quiet

# Two real rotations on loopback stand-ins of AWS, SES SMTP and Kion, then a proof of the outcome.
# Needs Python only. Options go in ARGS, e.g. make demo ARGS="--kion-url https://kion.staging.example"
demo: $(PY_STAMP)
	$(BIN)/python -m ses_smtp_rotator.demo $(ARGS)

# Prints P1-P4 (import time, overhead, propagation wait, calls per rotation) beside their goals.
# Figures, not tests: it never fails because a machine is slow.
bench: $(PY_STAMP)
	$(BIN)/python -m benchmarks $(ARGS)

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .ruff_cache
