# Two commands: `make run` (set up and start the app) and `make test` (set up and run all tests).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
# 127.0.0.1: only this machine reaches the app, and its users may train and switch the model.
# To share it, see the README's threat model (ADDRESS=0.0.0.0 with FER_ADMIN_PASSWORD set).
ADDRESS ?= 127.0.0.1

# HTTPS for a group on a network (docs/sharing.md): FER_TLS_CERT and FER_TLS_KEY name a
# certificate and its key (`make cert` makes a self-signed pair in certs/). Unset: plain HTTP,
# as ever, which is all one person on one machine needs.
TLS_ARGS = $(if $(FER_TLS_CERT)$(FER_TLS_KEY),--server.sslCertFile "$(FER_TLS_CERT)" --server.sslKeyFile "$(FER_TLS_KEY)")

.PHONY: run cert test test-fast lint install install-dev browser bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The pinned requirements, then this project itself (editable: `fer` and `import fer_core`
# work from anywhere, and edits take effect without reinstalling).
# BlazeFace's model files ship inside fer_core (fer_core/faces/models/, with their licence).
$(VENV)/.installed: requirements.txt pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

# fer: the peer that bench/ runs side by side (its own list pulls a second TensorFlow).
$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt requirements-ray.txt Makefile
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps fer==25.10.3
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# MALLOC_ARENA_MAX=2: every live stream runs threads that allocate frames; with glibc's default
# each gets a malloc arena of its own. Measured with python -m bench.live_capacity --steps 6 8 10
# --detector haar --fps 15 (2 cores, 2026-12-05): 8 streams held 531 MB instead of 733.
# app_lib.server.serve: `streamlit run` without Streamlit's lookup of the machine's public address (an
# outbound request on a wildcard ADDRESS); nothing leaves the machine.
run: install
	@if [ -n "$(FER_TLS_CERT)$(FER_TLS_KEY)" ]; then $(BIN)/python -m app_lib.server.certificate --check-env || exit 2; fi
	MALLOC_ARENA_MAX=2 $(BIN)/python -m app_lib.server.serve run app.py --server.address $(ADDRESS) --server.port $(PORT) $(TLS_ARGS)

# A self-signed certificate for this machine's names and addresses (NAMES="fer.lab 10.0.0.5"
# adds more): certs/fer.crt and certs/fer.key.
cert: install
	$(BIN)/python -m app_lib.server.certificate certs $(foreach name,$(NAMES),--name $(name))

# Chromium for the real-browser tests, and the servers they start as users would run them
# (coturn's TURN relay, nginx in front of two app processes, PostgreSQL for the records
# database), all Debian packages; never a
# browser downloaded by a test tool.
# The tests start their own instances on loopback, in network namespaces. (On a machine that
# runs systemd, apt also starts the packages' own services: `systemctl disable --now nginx
# coturn postgresql` if you do not want them.)
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 \
	    || ! command -v turnserver >/dev/null 2>&1 || ! command -v nginx >/dev/null 2>&1 \
	    || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	      chromium chromium-driver fonts-noto-color-emoji coturn nginx postgresql; \
	  else \
	    echo "chromium, coturn, nginx or postgresql is not installed and this user is not root: the tests that need them will be skipped"; \
	  fi; \
	fi

# Everything: the tests that need no browser on two workers (a file's tests stay together, so
# its fixtures are built once), then the real-browser tests one at a time (a browser, the app
# and the streams need the machine to themselves; in parallel their waits time out).
test: install-dev browser
	@$(BIN)/python -m pytest tests -q -p no:cacheprovider -m "not browser" -n 2 --dist loadfile; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; \
	$(BIN)/python -m pytest tests -q -p no:cacheprovider -m browser; browser=$$?; \
	if [ $$rc -ne 0 ]; then exit $$rc; fi; exit $$browser

# The quick loop while you work: everything but the tests marked slow, browser or real_data
# (pytest.ini says what each means), on every core (a file's tests stay together). `make test`
# still runs everything.
test-fast: install-dev
	$(BIN)/python -m pytest tests -q -p no:cacheprovider -m "not slow and not browser and not real_data" -n auto --dist loadfile

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache
