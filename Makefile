# The front door of the workbook. `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LAB    ?= 01
PORT   ?= 8888

.DEFAULT_GOAL := help
.PHONY: help setup lab test grade grade-all release doctor images bench clean cluster cluster-down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml environments/app/requirements.txt tests/requirements.txt environments/cloud/requirements.txt \
          environments/load/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[app,test,cloud,load]'
	@touch $@

setup: $(STAMP) ## create or update the virtual environment in .venv/

images: setup ## make sure the base images exist (pull, or build offline stand-ins)
	$(BIN)/labkit images

lab: setup images ## set everything up and open JupyterLab on labs/
	$(BIN)/labkit lab --port $(PORT) $(LAB_ARGS)

test: setup images ## run the whole test suite (unit, notebooks, grading honesty)
	$(BIN)/labkit build --check
	LABKIT_STRICT=1 $(BIN)/pytest --nbval-lax --nbval-cell-timeout=900 tests environments/app/tests solutions $(PYTEST_ARGS)

grade: setup ## grade your notebook: make grade LAB=01
	$(BIN)/labkit grade $(firstword $(wildcard labs/$(LAB)_*.ipynb) labs/$(LAB)_MISSING.ipynb) --json reports/$(LAB).json

grade-all: setup ## grade a class: make grade-all SUBMISSIONS=folder/ [LAB=01] (writes grades/)
	$(BIN)/labkit grade-all $(SUBMISSIONS) --out grades $(if $(filter command line,$(origin LAB)),--lab $(LAB)) $(GRADE_ARGS)

release: setup ## write the repository a class clones, without the answers: make release OUT=../class-repo
	$(BIN)/labkit release $(OUT)

doctor: setup ## check this machine for what the labs need
	$(BIN)/labkit doctor

bench: setup images ## measure image sizes, start time, latency and notebook times
	$(BIN)/python -m tests.bench

clean: setup ## remove every container, network, volume and image the labs made
	$(BIN)/labkit clean

cluster: ## create the labs' kind cluster (kubectl context kind-labkit; says how to get kind)
	environments/kind/cluster.sh up

cluster-down: ## delete the labs' kind cluster
	environments/kind/cluster.sh down
