# Everything a fresh machine needs: `make run` starts the stack, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTOS := $(shell find protos -name '*.proto' | sort)
# protoc with the message, service and typing (.pyi) generators; $(1) is the output folder.
protoc = $(PY) -m grpc_tools.protoc -Iprotos --python_out=$(1) --grpc_python_out=$(1) \
	--plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy --mypy_out=$(1) \
	--plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc --mypy_grpc_out=$(1) $(PROTOS) && \
	find $(1) -mindepth 1 -type d -exec touch {}/__init__.py \;

.PHONY: all venv protos check-protos lint fmt test test-fast run certs compose-test clean

all: test

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# gen/ is committed; regenerate it after changing protos/.
protos: $(STAMP)
	rm -rf gen && mkdir -p gen
	$(call protoc,gen)

# Fails when gen/ does not match what protos/ generates.
check-protos: $(STAMP)
	@tmp=$$(mktemp -d) && mkdir -p $$tmp/gen && \
	$(call protoc,$$tmp/gen) && \
	if diff -r -x __pycache__ $$tmp/gen gen >/dev/null; then echo "gen/ matches protos/"; rm -rf $$tmp; \
	else echo "gen/ is out of date with protos/: run 'make protos' and commit"; diff -r -x __pycache__ $$tmp/gen gen | head -20; rm -rf $$tmp; exit 1; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check services tests
	$(VENV)/bin/ruff format --check services tests
	$(VENV)/bin/mypy services

fmt: $(STAMP)
	$(VENV)/bin/ruff format services tests
	$(VENV)/bin/ruff check --fix services tests

test: $(STAMP) check-protos lint
	$(PY) -m pytest -q

run: $(STAMP)
	$(PY) -m services.cli run

# A local CA, a certificate per service and one for callers (var/certs/), and the token secret
# (var/auth-secret): what docker-compose mounts; `gongji run --certs var/certs` uses them too.
certs: $(STAMP)
	$(PY) -m services.cli certs

# Where a Docker engine runs: the stack in containers (docker-compose.yml), then, as a caller
# outside it would (mutual TLS, tokens from var/auth-secret): gongji health, the e2e rules and
# CLI tests (GONGJI_E2E_STACK=external points them at it), and gongji audit of its Redis; then down.
COMPOSE_CALLER = GONGJI_TLS_CERT_FILE=var/certs/client.pem GONGJI_TLS_KEY_FILE=var/certs/client.key \
	GONGJI_TLS_CA_FILE=var/certs/ca.pem GONGJI_AUTH_SECRET_FILE=var/auth-secret \
	GONGJI_ACCOUNT_ADDR=localhost:50051 GONGJI_BINDING_ADDR=localhost:50052 \
	GONGJI_SETTLEMENT_ADDR=localhost:50053
compose-test: certs
	docker compose up -d --build --wait
	$(COMPOSE_CALLER) sh -c '$(VENV)/bin/gongji health && \
	  GONGJI_E2E_STACK=external $(PY) -m pytest -q tests/e2e/test_rules_over_processes.py \
	    tests/e2e/test_cli.py && \
	  GONGJI_REDIS_URL=redis://localhost:6379/0 $(VENV)/bin/gongji audit'; \
	status=$$?; docker compose down; exit $$status

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
