# Every target bootstraps what it needs; a second run with nothing changed does nothing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
RASA_VENV := .venv-rasa
HOTLINE := $(VENV)/bin/hotline
RASA := RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=2 $(RASA_VENV)/bin/rasa
RASA_DATA := --domain bot --data data/nlu data/stories data/rules --config config.yml

.PHONY: help setup run test check train eval bench bench-train shell lint types release redis chromium deploy-tools validate stories pytest content-check lock

help:
	@echo "make run     install what is missing, train if needed, start the hotline"
	@echo "make test    the same set-up, then every test"
	@echo "make check   the fast lane: lint, types and the tests that need no trained model"
	@echo "make train   train the model when config.yml, bot/ or data/ changed"
	@echo "make shell   chat with the bot in the terminal (LANG=pt|en|fr|sw)"
	@echo "make eval    intent, language and risk figures on the held-out sets"
	@echo "make bench   load benchmark against Rasa's own REST channel; console page times"
	@echo "make bench-train  the former and the current pipeline trained side by side"
	@echo "make release content check, validate, train, story tests, summary of changes"
	@echo "make lock    rewrite the lock files (pins and hashes) after a dependency change"

# Both environments install exactly their lock file: every package pinned, every file checked
# against its SHA-256 (--require-hashes), nothing else (--no-deps); scripts/lock writes them.
# The hotline itself goes in last, editable, built by the locked setuptools.
$(VENV)/.installed: pyproject.toml requirements.lock
	@py=$$(scripts/find-python 3.11) && $$py -m venv $(VENV)
	$(VENV)/bin/pip install -q --require-hashes --no-deps -r requirements.lock
	$(VENV)/bin/pip install -q --no-deps --no-build-isolation -e .
	$(VENV)/bin/pip check
	@touch $@

$(RASA_VENV)/.installed: requirements-rasa.txt requirements-rasa.lock
	@py=$$(scripts/find-python 3.10) && $$py -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/pip install -q --require-hashes --no-deps -r requirements-rasa.lock
	$(RASA_VENV)/bin/pip check
	@touch $@

# Rewrite the lock files after a change to pyproject.toml or requirements-rasa.txt.
lock:
	scripts/lock

redis:
	@command -v redis-server >/dev/null || scripts/apt-install redis-server

chromium:
	@command -v chromium >/dev/null || scripts/apt-install chromium

# The deployment tests verify the shipped units and proxy config with the real tools.
deploy-tools:
	@command -v systemd-analyze >/dev/null || scripts/apt-install systemd
	@command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || scripts/apt-install haproxy

setup: $(VENV)/.installed $(RASA_VENV)/.installed redis

train: setup
	@$(HOTLINE) train

run: setup train
	@$(HOTLINE) run

shell: setup train
	@$(HOTLINE) shell --language $(or $(filter pt en fr sw,$(LANG)),pt)

validate: setup
	$(RASA) data validate $(RASA_DATA) --fail-on-warnings

stories: train
	$(RASA) test core --model models/hotline.tar.gz --stories tests/stories \
		--fail-on-prediction-errors --out var/results/stories

# Three workers on two cores (the tests wait on Redis, Rasa and subprocesses as much as they
# compute): the tests on the shared Rasa stack stay together on one worker (one xdist group,
# tests/conftest.py), the rest spread over the others. 10 min 53 s here against about 14 serial.
pytest: setup chromium deploy-tools train
	$(VENV)/bin/python -m pytest -q -n 3 --dist loadgroup -p no:cacheprovider

content-check: setup
	$(HOTLINE) content check

test: setup chromium deploy-tools lint content-check train validate stories pytest

# The fast lane (about 2 min 20 s here): lint, types and every test that needs no trained
# model and no browser (those are marked `needs_model` or live in tests/browser; make test runs
# them). Four workers on two cores, since most tests wait on Redis or a subprocess.
check: setup deploy-tools lint content-check
	$(VENV)/bin/python -m pytest -q -n 4 -m "not needs_model" --ignore=tests/browser -p no:cacheprovider

release: content-check train validate stories
	$(HOTLINE) content release --mark

eval: setup train
	@$(HOTLINE) eval

# Every benchmark runs and prints its figures even when one before it failed a check; the
# target fails at the end if any did.
bench: setup train
	@scripts/with-hotline bash -c 'failed=0; for b in load console turns durability; do $(VENV)/bin/python bench/$$b.py || { echo "bench/$$b.py: a check failed" >&2; failed=1; }; done; exit $$failed'

bench-train: setup
	@$(VENV)/bin/python bench/train.py

lint: setup
	$(VENV)/bin/ruff check hotline protection ops content actions channels referral tests bench
	$(VENV)/bin/ruff format --check hotline protection ops content actions channels referral tests bench
	$(VENV)/bin/mypy
