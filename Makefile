# CRM Analytics — the pipeline as a file DAG.
#   make reports [DATASET=demo]   set up, build raw data, run every notebook, publish HTML
#   make test                     the test suite (unit, nbval, end to end)
# `make help` lists every target.

SHELL := /bin/bash
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
.PHONY: reports data test bench lab clean distclean help forget compare contacts

DATASET ?= demo
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
JUPYTER ?= $(VENV)/bin/jupyter
SETUP := $(VENV)/.installed
# pyspark and Ibis's PySpark backend (engine: pyspark; needs Java 17+): make test, and make reports when the
# params say engine: pyspark (ENGINE in build/<dataset>/dataset.mk), install them once
SPARK_SETUP := $(VENV)/.spark-installed
BUILD := build/$(DATASET)
REPORTS := reports/$(DATASET)
RAW := data/raw/$(DATASET)
PARAMS_SRC := $(wildcard params/$(DATASET).yaml params/$(DATASET)/*.yaml)
ALL_NOTEBOOKS := $(wildcard notebooks/[0-9][0-9]_*.ipynb)
PACKAGE_SRC := $(shell find src/crm_analytics -name '*.py' 2>/dev/null)
ERASURE := $(wildcard data/erasure/$(DATASET).txt)
# the reports' words: a changed translation republishes the reports
LOCALE := $(wildcard src/crm_analytics/locale/*/*.po)

## reports   Run every notebook of DATASET (default demo) and publish reports/$(DATASET)/index.html
reports: $(REPORTS)/index.html

## data      Build the raw data of DATASET (generate the demo world, copy CDNOW, check an export exists)
data: $(RAW)/_SUCCESS

## test      Run the test suite (unit tests, nbval over the notebooks, an end-to-end run on `ci`)
test: $(SETUP) $(SPARK_SETUP)
	$(PY) -m pytest

## bench     Benchmarks (1,000,000-customer world; slow); writes reports/bench/bench.json; BENCH="name ..." runs only those (BENCH=reports_10m: the 10 M run, about an hour)
bench: $(SETUP)
	$(PY) tests/benchmarks/run.py $(BENCH)

## lab       Build the `ci` reports (the notebooks' defaults read them), then open JupyterLab on the notebooks
lab: $(SETUP)
	@echo "building dataset ci first: every notebook's defaults read it, so Run All works at once"
	@$(MAKE) --no-print-directory reports DATASET=ci
	$(JUPYTER) lab --notebook-dir=notebooks

## compare   What changed between two runs: make compare DATASET=<name> [A=<run> [B=<run>]] (default: the last two)
compare: $(SETUP)
	@$(PY) -m crm_analytics.reports.history compare $(DATASET) $(A) $(B)

## contacts  Import lists for a CRM or e-mail tool, contact details attached (personal data: data/contacts/, never reports/): make contacts DATASET=<name> [FORMAT=mailchimp|hubspot|generic] [OUT=<folder>]
FORMAT ?= generic
contacts: $(SETUP)
	@$(PY) -m crm_analytics.pipeline.crm_export $(DATASET) --format $(FORMAT) $(if $(OUT),--out "$(OUT)")

## forget    Record an erasure request: make forget CUSTOMER=<id> DATASET=<name>
forget: $(SETUP)
	@$(PY) -m crm_analytics.ingest.erasure add $(DATASET) "$(CUSTOMER)"
	@if [ -d data/contacts/$(DATASET) ]; then echo "note: contact lists written before this request are in data/contacts/$(DATASET): run make contacts DATASET=$(DATASET) again (after make reports) or delete them"; fi

## clean     Remove reports, build files and derived data (keeps raw data and the virtualenv)
clean:
	rm -rf build reports/*/ data/interim data/processed data/contacts

## distclean Also remove raw data and the virtualenv
distclean: clean
	rm -rf data/raw $(VENV)

## help      This list
help:
	@echo "CRM Analytics — make targets (DATASET=$(DATASET); datasets: $(notdir $(basename $(wildcard params/*.yaml))))"
	@sed -n 's/^## /  make /p' $(MAKEFILE_LIST)

# --- set-up: once, again only when pyproject.toml changes ------------------------------------
$(SETUP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "CRM Analytics needs Python >= 3.11; found " + sys.version.split()[0] + " (set PYTHON=python3.12)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name crm-analytics --display-name "CRM Analytics" >/dev/null
	touch $@

# the `spark` extra of pyproject.toml, installed beside the package (not re-installing it: a project copy
# that links the virtualenv, as the tests make, leaves it alone when pyspark is there already)
$(SPARK_SETUP): pyproject.toml | $(SETUP)
	@$(PY) -c 'import pyspark, ibis.backends.pyspark' 2>/dev/null || $(PY) -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["spark"]))' | xargs $(PY) -m pip install --quiet
	@command -v java >/dev/null || [ -x "$$JAVA_HOME/bin/java" ] || echo "note: engine pyspark needs Java 17+ (e.g. apt-get install openjdk-17-jre-headless)" >&2
	touch $@

# --- the dataset's DAG ------------------------------------------------------------------------
# build/$(DATASET)/dataset.mk lists the dataset's notebooks and, per notebook, the package
# modules it imports; the per-notebook params files are rewritten only when their values change.
ifneq ($(filter reports data $(REPORTS)/%,$(MAKECMDGOALS)),)
include $(BUILD)/dataset.mk
endif

$(BUILD)/dataset.mk: $(PARAMS_SRC) $(ALL_NOTEBOOKS) $(PACKAGE_SRC) | $(SETUP)
	@$(PY) -m crm_analytics.pipeline configure $(DATASET)

$(BUILD)/params/%.yaml: $(BUILD)/dataset.mk ;
$(BUILD)/source.yaml: $(BUILD)/dataset.mk ;

$(RAW)/_SUCCESS: $(BUILD)/source.yaml $(RAW_INPUTS) $(RAW_DEPS) | $(SETUP)
	$(PY) -m crm_analytics.ingest.sources build $(DATASET)

# An input file that went missing after configure: configure names the params key and the path.
ifneq ($(strip $(RAW_INPUTS)),)
$(RAW_INPUTS):
	@$(PY) -m crm_analytics.pipeline configure $(DATASET)
endif

# One row per customer who bought, built once from the clean tables for every notebook after 01.
FEATURES := data/processed/$(DATASET)/customer_features.parquet
$(FEATURES): $(REPORTS)/01_data_cleaning.html $(wildcard src/crm_analytics/features/*.py) src/crm_analytics/compute.py | $(SETUP) $(if $(filter pyspark,$(ENGINE)),$(SPARK_SETUP))
	@echo "building customer features of $(DATASET)"
	@$(PY) -m crm_analytics.features build $(DATASET)

define NOTEBOOK_RULE
$(REPORTS)/$(1).html: notebooks/$(1).ipynb $(BUILD)/params/$(1).yaml $(DEPS_$(1)) $(LOCALE) $(RAW)/_SUCCESS $(if $(filter-out 01_data_cleaning,$(1)),$(REPORTS)/01_data_cleaning.html $(FEATURES),$(ERASURE)) $(foreach n,$(NEEDS_$(1)),$(REPORTS)/$(n).html) | $(SETUP) $(if $(filter pyspark,$(ENGINE)),$(SPARK_SETUP))
	@echo "running $(1) on $(DATASET)"
	@$(PY) -m crm_analytics.pipeline run $(DATASET) $(1)
endef
$(foreach nb,$(NOTEBOOKS),$(eval $(call NOTEBOOK_RULE,$(nb))))

$(REPORTS)/index.html: $(foreach nb,$(NOTEBOOKS),$(REPORTS)/$(nb).html) $(BUILD)/dataset.mk src/crm_analytics/reports/index.py src/crm_analytics/reports/summary.py src/crm_analytics/reports/history.py $(LOCALE)
	@$(PY) -m crm_analytics.pipeline index $(DATASET)
