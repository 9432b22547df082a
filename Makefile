# Two commands for a fresh machine (Python 3.11, make, bash):
#   make run    installs what is missing and starts the dashboard
#   make test   installs what is missing (test tools, Debian's chromium) and runs the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PORT   ?= 8501

.PHONY: run test chromium bench bench-peer peer-venv clean

run: $(VENV)/.app
	$(BIN)/streamlit run streamlit_app.py --server.port $(PORT) --server.address localhost

test: $(VENV)/.dev chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.app
	$(BIN)/python -m igcap bench

# The ONNX Runtime int8 peer runs in its own environment (Optimum's exporter needs an older transformers);
# bench-peer is the benchmark with it as a third path (docs/performance.md).
PEER_VENV := .venv-peer

peer-venv: $(PEER_VENV)/.peer

$(PEER_VENV)/.peer: requirements-peer.txt
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install -q --upgrade pip
	$(PEER_VENV)/bin/python -m pip install -q -r requirements-peer.txt
	touch $@

bench-peer: $(VENV)/.app $(PEER_VENV)/.peer
	$(BIN)/python -m igcap bench --peer $(PEER_VENV)/bin/python

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.app: requirements.txt | $(VENV)/bin/python
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $(VENV)/.app $@

# The browser test drives Debian's chromium (Playwright's own browser download does not work offline).
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

clean:
	rm -rf $(VENV) $(PEER_VENV) .pytest_cache
