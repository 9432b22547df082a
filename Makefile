# Two commands for a fresh machine (Python 3.11, make, bash):
#   make run    installs what is missing and starts the dashboard
#   make test   installs what is missing (test tools, Debian's chromium) and runs the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PORT   ?= 8501
# requirements.txt names PyTorch's page of CPU wheels (PyPI's Linux torch is the CUDA build). Where that page
# cannot be reached (a mirror of PyPI only, as on this project's CI) pip would try it, with retries, for every
# package it looks up: the installs then read copies of the requirements without it and with the plain pin
# (torch==2.13.0, which the +cpu wheel of a local mirror or find-links folder also satisfies).
TORCH_PAGE := https://download.pytorch.org/whl/cpu/torch/
REACHABLE   = $(shell $(PYTHON) -c "import urllib.request as u; u.urlopen('$(TORCH_PAGE)', timeout=5)" 2>/dev/null && echo yes)
UNPAGE     := sed -i -e '/^--find-links https:..download.pytorch.org.whl.cpu.torch/d' -e 's/^\(torch==[0-9.]*\)+cpu /\1 /'
define pip_install_r
	mkdir -p $(VENV)/requirements && cp requirements.txt requirements-dev.txt $(VENV)/requirements/
	$(if $(REACHABLE),,$(UNPAGE) $(VENV)/requirements/requirements.txt)
	$(BIN)/python -m pip install -q -r $(VENV)/requirements/$(1)
endef

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
	cp requirements-peer.txt $(PEER_VENV)/requirements-peer.txt
	$(if $(REACHABLE),,$(UNPAGE) $(PEER_VENV)/requirements-peer.txt)
	$(PEER_VENV)/bin/python -m pip install -q -r $(PEER_VENV)/requirements-peer.txt
	touch $@

bench-peer: $(VENV)/.app $(PEER_VENV)/.peer
	$(BIN)/python -m igcap bench --peer $(PEER_VENV)/bin/python

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.app: requirements.txt | $(VENV)/bin/python
	$(call pip_install_r,requirements.txt)
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(call pip_install_r,requirements-dev.txt)
	touch $(VENV)/.app $@

# The browser test drives Debian's chromium (Playwright's own browser download does not work offline).
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

clean:
	rm -rf $(VENV) $(PEER_VENV) .pytest_cache
