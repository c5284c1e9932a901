# three-instance: set-up, demo and tests. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
# Podman settings for the test hosts live in the repo; /etc/containers is never touched.
export CONTAINERS_CONF := $(CURDIR)/containers/containers.conf
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR ?= 0
export NO_COLOR ?= 1
# The stack scenario and the demo are the same estate (inventories/local: dev1, qa1, live1): one at
# a time. The demo's containers carry the label three-instance=demo; the scenario refuses to start
# while they exist, and the demo refuses while the scenario's (label owner=molecule) do. Each
# scenario has a lock of its own too, so that a scenario never runs twice at once.
PODMAN_LOCK := /tmp/three-instance-podman.lock
LOCAL_HOSTS := dev1 qa1 live1
# Names of the containers among $(LOCAL_HOSTS) that carry the label $(1)=$(2).
labelled = $(shell podman ps -a --filter label=$(1)=$(2) --format '{{.Names}}' 2>/dev/null | tr '\n' ' ')
SCENARIOS ?= $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))
PLAYBOOKS := $(wildcard playbooks/*.yml)
ESTATE ?= inventories/local

.PHONY: help setup venv host-packages test-image lint sanity syntax pytest molecule test demo demo-clean clean-hosts s3-start s3-stop

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: host-packages venv test-image ## everything the demo and the tests need (idempotent)

host-packages:
	@tools/install-host-packages.sh

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -U pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

test-image: host-packages ## build the test-host image (skipped when the recipe is unchanged)
	@tools/build-test-image.sh

lint: venv ## yamllint, ansible-lint (production profile), ruff, ansible-test sanity
	yamllint -s .
	ansible-lint
	ruff check .
	ruff format --check .
	$(MAKE) --no-print-directory sanity

# ansible-test sanity (validate-modules, import, compile, pylint, pep8, ansible-doc, ...) over
# library/ and plugins/, in a throwaway collection three_instance.lms that tools/sanity.py
# assembles in a temporary directory (it says what it rewrites). Every test runs for Debian 12's
# Python 3.11; the per-Python tests (compile, import) run again for the other supported host
# Pythons, 3.10 (Ubuntu 22.04) and 3.9 (RHEL 9), where this machine has them (pyenv's, or
# python3.X on PATH), as tests/unit/test_host_pythons.py does. ansible-test installs each test's
# requirements from PyPI into its own virtual environments (~/.ansible/test/venv; the first run
# takes a few minutes more). No test is skipped; the few exceptions are in tests/sanity/ignore.txt,
# each with its reason.
SANITY_OTHER_PYTHONS := 3.10 3.9
sanity: venv ## ansible-test sanity over library/ and plugins/ (as a collection), Python 3.11 (+3.10, 3.9)
	python tools/sanity.py --python 3.11
	@for version in $(SANITY_OTHER_PYTHONS); do \
	  found=$$(ls -d $$HOME/.pyenv/versions/$$version.*/bin 2>/dev/null | tail -n 1 || true); \
	  if [ -z "$$found" ] && ! python$$version -V >/dev/null 2>&1; then \
	    echo "sanity: no Python $$version on this machine: compile and import for it not run"; continue; fi; \
	  echo "=== sanity: compile and import on Python $$version"; \
	  PATH="$(CURDIR)/.venv/bin:$${found:+$$found:}$$PATH" $(CURDIR)/.venv/bin/python tools/sanity.py \
	    --test compile --test import --python $$version || exit 1; \
	done

syntax: venv ## ansible-playbook --syntax-check of every playbook
	@for playbook in $(PLAYBOOKS); do \
	  ansible-playbook --syntax-check -i $(ESTATE) $$playbook >/dev/null && echo "syntax ok: $$playbook"; \
	done

# In `make test` the stack scenario is the longest job: the others yield the CPU to it (nice), so
# they fill its waits instead of stretching it (alone, nice changes nothing).
pytest: setup ## unit and integration tests (real S3 API, real Moodle when MOODLE_SRC is found)
	nice -n 10 pytest -ra --durations=15 tests

molecule: setup ## every Molecule scenario, one after another: converge, idempotence, side effect, verify
	@for scenario in $(SCENARIOS); do $(MAKE) --no-print-directory molecule-$$scenario || exit 1; done

# (not .PHONY: make applies no pattern rule to a phony target)
molecule-%: setup
	@echo "=== molecule test -s $*"
	@$(if $(filter stack,$*),demo="$(call labelled,three-instance,demo)"; \
	  if [ -n "$$demo" ]; then echo "refused: the demo's containers ($$demo) use the names of the stack scenario's hosts; \
	make demo-clean first (the demo is not touched)"; exit 2; fi)
	@# The scenario's S3 API (tools/local_s3.py) is stopped whatever the result.
	rc=0; flock $(PODMAN_LOCK).$* $(if $(filter stack,$*),flock $(PODMAN_LOCK),nice -n 5) molecule test -s $* || rc=$$?; \
	  $(if $(filter stack,$*),python tools/local_s3.py stop >/dev/null 2>&1 || true;) exit $$rc

# pytest and each scenario run side by side (their hosts, databases and S3 servers are their own):
# on 2 cores that takes about half the time of running them one after another. Each one's output
# is printed whole when it ends.
test: setup lint syntax ## the whole suite; what CI runs
	$(MAKE) --no-print-directory -j $(words pytest $(SCENARIOS)) --output-sync=target \
	  pytest $(addprefix molecule-,$(SCENARIOS))

s3-start: venv
	@python tools/local_s3.py start >/dev/null && echo "local S3 API on http://127.0.0.1:$${LOCAL_S3_PORT:-5055}"

s3-stop: venv
	@python tools/local_s3.py stop

demo: setup s3-start ## converge the local estate (dev1, qa1, live1 + local S3), then a release dev -> qa -> live
	@tests="$(call labelled,owner,molecule)"; if [ -n "$$tests" ]; then \
	  echo "refused: containers of a Molecule scenario ($$tests) are up; the demo uses the same names (dev1, qa1, live1): \
	wait for make test to end, or make clean-hosts"; exit 2; fi
	flock $(PODMAN_LOCK) ansible-playbook -i $(ESTATE) playbooks/local_hosts.yml
	ansible-playbook -i $(ESTATE) playbooks/demo.yml
	ansible-playbook -i $(ESTATE) playbooks/demo_release.yml

demo-clean: ## remove the demo containers and stop the local S3 API
	-ansible-playbook -i $(ESTATE) playbooks/local_hosts.yml -e local_hosts_state=absent
	-python tools/local_s3.py stop

clean-hosts: ## remove any test containers and S3 server left behind (never the demo's)
	-podman ps -a --filter ancestor=localhost/three-instance-host:bookworm --format '{{.Names}} {{.Labels}}' \
	  | grep -v 'three-instance:demo' | cut -d' ' -f1 | xargs -r podman rm -f -t 2 >/dev/null 2>&1
	-podman volume rm -f three-instance-initech-live-data >/dev/null 2>&1
	-python tools/local_s3.py stop >/dev/null 2>&1
