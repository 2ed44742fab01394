# humdex: `make demo` installs and runs the demo; `make test` installs and runs the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test system-deps lint clean constraints

# constraints.txt holds the versions of a green run (`make constraints` writes it from the venv;
# upgrading it is a deliberate change with its own green `make test`)
PIP := $(BIN)/pip install -q -c constraints.txt
# a suite that runs past this is stalled (a hung worker): stop it with a clear message
SUITE_LIMIT_S ?= 1800

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: the CPU build; a plain `torch` requirement would pull a multi-GB CUDA build
	$(PIP) torch==2.13.0
	# torchcrepe declares torchaudio, which fails to import with torch 2.13: install it without deps
	# (its real dependencies are humdex's own)
	$(PIP) --no-deps torchcrepe==0.0.24
	$(PIP) -e ".[server,dev]"
	# a Milvus 2.3 standalone server binary (tests/test_milvus_server.py); its wheel declares no dependencies
	$(PIP) --no-deps "milvus>=2.3.5,<2.4"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/humdex demo

# Debian packages the tests use: Chromium + ChromeDriver (browser end-to-end tests), FluidSynth and
# three GM soundfonts (the records renderer: FluidR3 for training sound, TimGM6mb held out, csound's
# GM bank the melody net's development sound), a C compiler (the DTW kernel,
# humdex.classical.native: without one humdex runs numba's, slower to start)
SYSTEM_PACKAGES := chromium chromium-driver fluidsynth fluid-soundfont-gm timgm6mb-soundfont csound-soundfont gcc libc6-dev
system-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v fluidsynth >/dev/null \
	  && command -v cc >/dev/null \
	  && [ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] && [ -f /usr/share/sounds/sf2/TimGM6mb.sf2 ] \
	  && [ -f /usr/share/sounds/sf2/sf_GMbank.sf2 ] || \
	  { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES)) \
	    >/dev/null 2>&1 || echo "could not install $(SYSTEM_PACKAGES): the tests that need them fail" >&2; }

# --max-worker-restart=0: a crashed worker fails the run at once (restarted workers can hang xdist)
test: install system-deps
	@timeout --kill-after=30 $(SUITE_LIMIT_S) $(BIN)/python -m pytest -q -n 2 --dist loadfile \
	  --max-worker-restart=0; rc=$$?; \
	  if [ $$rc -eq 124 ] || [ $$rc -eq 137 ]; then \
	    echo "make test: the suite ran past $(SUITE_LIMIT_S) s and was stopped: a test or a worker stalled" >&2; fi; \
	  exit $$rc

constraints: install
	$(BIN)/pip freeze --exclude-editable > constraints.txt

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/mypy src/humdex

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
