# Makefile for subinterpreters -- see README.md ("Development").
#
# Every Python-facing target works per CPython minor version, each in its own
# virtual environment named after it: .venv-3.12, .venv-3.13, ...  The
# interpreters are found by tools/find-pythons.sh; override with e.g.
#     make test PYTHONS=python3.13
#     make test PYTHONS="/opt/py/bin/python3.12 /opt/py/bin/python3.13"
# Extra pytest arguments:  make test PYTEST_ARGS="-x -k queue"

SHELL := /bin/bash
.DEFAULT_GOAL := help
# Builds share ./build and the venvs share pip's cache: run targets one at a
# time even under "make -j".
.NOTPARALLEL:

# --- interpreters ---------------------------------------------------------
# "3.12=/path/python3.12 3.13=/path/python3.13"; computed once per make run.
# Names starting with "deb" in PYTHONS pick Pythons of the Debian root.
HOST_PYTHONS := $(filter-out deb%,$(PYTHONS))
PY_PAIRS := $(if $(strip $(PYTHONS)),$(if $(HOST_PYTHONS),$(shell bash \
	tools/find-pythons.sh $(HOST_PYTHONS))),$(shell bash tools/find-pythons.sh))
# The Debian unstable root of "make debian-root": its CPythons (3.13 latest,
# 3.14, 3.15) join every target as "deb3.X" once it exists.  Their venvs
# (.venv-deb3.X) live in this checkout, which the root sees at the same
# path; commands for them run through "tools/debian-root.sh run".
DEBIAN_ROOT ?= $(CURDIR)/.debian-root
DEB_PAIRS := $(shell bash tools/debian-root.sh pythons $(DEBIAN_ROOT) 2>/dev/null)
ifneq ($(strip $(PYTHONS)),)
DEB_PAIRS := $(foreach x,$(DEB_PAIRS),$(if $(filter $(firstword $(subst =, ,$(x))),$(PYTHONS)),$(x)))
endif
PY_PAIRS += $(DEB_PAIRS)
VERSIONS := $(foreach x,$(PY_PAIRS),$(firstword $(subst =, ,$(x))))
$(foreach x,$(PY_PAIRS),$(eval PY_$(firstword $(subst =, ,$(x))) := $(lastword $(subst =, ,$(x)))))
NEWEST := $(lastword $(sort $(filter-out deb%,$(VERSIONS))))
# In a recipe: "$(call RUN_IN,3.13)" is empty for a host Python and the
# chroot wrapper for a Debian one.  RUN_IN_SH does the same for a shell
# variable $$v in the loops below.
RUN_IN = $(if $(filter deb%,$(1)),bash tools/debian-root.sh run $(DEBIAN_ROOT))
RUN_IN_SH = $$(case $$v in deb*) echo bash tools/debian-root.sh run $(DEBIAN_ROOT);; esac)

# --- settings ---------------------------------------------------------------
# Installed into every venv (build backend + test tools).
# requests: a real PyPI package for the real-code tests (tests/_realcode_defs.py).
# dask, distributed: tests/test_dask.py runs a LocalCluster with our plugin.
VENV_PKGS := setuptools wheel pytest pytest-timeout hypothesis mypy requests \
	dask distributed
PYTEST := -m pytest tests -q -p no:cacheprovider
PYTEST_ARGS ?=
BENCH_ARGS ?=
# Benchmark venvs (.venv-bench-X.Y, apart from the test venvs): our build,
# the PEP 734 backport and matplotlib for the chart.  On 3.12 the backport
# needs its C part from a separate sdist built against CPython's internal
# headers; it is optional (the benchmarks then report the backport as not
# runnable), so it is installed apart and a failure only warns.
BENCH_PKGS := setuptools wheel interpreters-pep-734 matplotlib dask distributed
BENCH_EXTRA_3.12 := interpreters-3-12
DEMO_ARGS ?=
# make stress: length of the random-operations run, hypothesis profile.
STRESS_SECONDS ?= 300
STRESS_FUZZ_PROFILE ?= long
# make valgrind: memcheck with every allocation visible (PYTHONMALLOC=malloc);
# CPython's own leaks are suppressed by tools/valgrind-python.supp and
# tools/valgrind_check.py fails on memory errors and on leaks our code made.
VALGRIND ?= valgrind
VALGRIND_FLAGS = --tool=memcheck --leak-check=full \
	--show-leak-kinds=definite --errors-for-leak-kinds=definite \
	--num-callers=40 --suppressions=tools/valgrind-python.supp
# pip is quiet; PIP_BUILD_FLAGS=-v shows the compiler command lines/warnings.
PIP_BUILD_FLAGS ?= -q
# Warnings are errors in "make build/test/demo" (set SBI_WERROR=0 to relax).
SBI_WERROR ?= 1
CLANG_FORMAT ?= clang-format
C_FILES = $(wildcard src/_subinterpreters/*.c src/_subinterpreters/*.h)

# Sanitizer run: CPython itself is not instrumented, so libasan is preloaded.
# detect_leaks=0 because CPython leaks on purpose at exit (interned strings,
# static types, ...); PYTHONMALLOC=malloc lets ASan see object allocations.
# pytest runs with --capture=sys there, so that reports written to fd 2 by
# the sanitizers (or by assert()/Py_FatalError) reach the terminal instead
# of dying with pytest's captured output when the process aborts.
ASAN_ENV = ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	PYTHONMALLOC=malloc SBI_SANITIZE=1

# pip install of the current tree, rebuilt from scratch.  $(1): venv dir,
# $(2): extra environment (build switches), $(3): the Python's key (3.12,
# deb3.14, ...), which says where it runs.
define pip_build
	@echo "==> building subinterpreters into $(1)$(if $(2), [$(strip $(2))])"
	@rm -rf build src/*.egg-info
	@$(call RUN_IN,$(3)) env $(2) $(1)/bin/python -m pip install \
		--no-build-isolation --no-deps --force-reinstall $(PIP_BUILD_FLAGS) .
endef

VENV_TARGETS := $(addprefix venv-,$(VERSIONS))
BUILD_TARGETS := $(addprefix build-,$(VERSIONS))
ASAN_VENV_TARGETS := $(addprefix asan-venv-,$(VERSIONS))
ASAN_BUILD_TARGETS := $(addprefix asan-build-,$(VERSIONS))
BENCH_VENV_TARGETS := $(addprefix bench-venv-,$(VERSIONS))
BENCH_BUILD_TARGETS := $(addprefix bench-build-,$(VERSIONS))
VALGRIND_VENV_TARGETS := $(addprefix valgrind-venv-,$(VERSIONS))
VALGRIND_BUILD_TARGETS := $(addprefix valgrind-build-,$(VERSIONS))

.PHONY: help check-pythons venvs build test demo asan valgrind stress bench \
	debian-root debian-root-clean \
	clean distclean format format-check $(VENV_TARGETS) $(BUILD_TARGETS) \
	$(ASAN_VENV_TARGETS) $(ASAN_BUILD_TARGETS) \
	$(VALGRIND_VENV_TARGETS) $(VALGRIND_BUILD_TARGETS) \
	$(BENCH_VENV_TARGETS) $(BENCH_BUILD_TARGETS)

help:
	@echo "Targets:"
	@echo "  make demo        build for the newest Python, run examples/demo.py"
	@echo "  make test        build and run pytest on every Python found"
	@echo "  make venvs       create .venv-X.Y for every Python found"
	@echo "  make build       (re)build and install into every .venv-X.Y"
	@echo "  make asan        ASan+UBSan debug build and tests (.venv-asan-X.Y)"
	@echo "  make valgrind    memcheck of tools/smoke.py, debug build (.venv-valgrind-X.Y)"
	@echo "  make stress      soak: stress and fuzz tests, longer (STRESS_SECONDS=300)"
	@echo "  make bench       benchmarks vs the backport, threads, processes"
	@echo "                   on every Python (.venv-bench-X.Y; BENCH_ARGS=--quick)"
	@echo "  make debian-root build .debian-root: Debian's CPython 3.13, 3.14, 3.15"
	@echo "                   (every target then runs on them too, as deb3.X)"
	@echo "  make format      clang-format the C sources"
	@echo "  make clean       remove build artefacts (distclean: venvs too)"
	@echo "Pythons found: $(if $(PY_PAIRS),$(PY_PAIRS),none)"
	@echo "Variables: PYTHONS=\"python3.13 deb3.14 ...\"  PYTEST_ARGS=\"-x -k name\""
	@echo "           SBI_WERROR=0|1 SBI_DEBUG=1 SBI_COVERAGE=1 SBI_SANITIZE=1"

check-pythons:
	@if [ -z "$(VERSIONS)" ]; then \
		echo "error: no usable CPython >= 3.12 found." >&2; \
		echo "  Looked for python3.12/3.13/3.14 under \$$(pyenv root)/versions/*/bin/ and on PATH" >&2; \
		echo "  (each must run, be a GIL build and ship Python.h and venv)." >&2; \
		echo "  Point at one explicitly: make ... PYTHONS=/path/to/python3.13" >&2; \
		exit 1; \
	fi
	@echo "==> Pythons: $(PY_PAIRS)"

# --- venvs ------------------------------------------------------------------
venvs: check-pythons $(VENV_TARGETS)

$(VENV_TARGETS): venv-%: | check-pythons
	@$(call RUN_IN,$*) bash tools/ensure-venv.sh .venv-$* $(PY_$*) $(VENV_PKGS)

# --- build ------------------------------------------------------------------
build: check-pythons $(BUILD_TARGETS)

$(BUILD_TARGETS): build-%: venv-%
	$(call pip_build,.venv-$*,SBI_WERROR=$(SBI_WERROR),$*)

# --- test -------------------------------------------------------------------
# Runs from the repo root so the tests import the installed package (src/ is
# not on sys.path).  Every Python runs even if an earlier one fails.
test: build
	@failed=""; \
	for v in $(VERSIONS); do \
		echo "==> pytest on Python $$v"; \
		$(RUN_IN_SH) env PYTHONFAULTHANDLER=1 .venv-$$v/bin/python \
			$(PYTEST) $(PYTEST_ARGS) || failed="$$failed $$v"; \
	done; \
	if [ -n "$$failed" ]; then \
		echo "==> tests FAILED on Python:$$failed" >&2; exit 1; \
	fi; \
	echo "==> tests passed on Python: $(VERSIONS)"

# A longer soak of the bounded stress and fuzz tests (make test runs them
# with 30 s of random operations and ~10,000 fuzz cases), and the whole
# real-code matrix: call() too, and every module of the standard library.
stress: build
	@failed=""; \
	for v in $(VERSIONS); do \
		echo "==> stress and fuzz soak on Python $$v"; \
		$(RUN_IN_SH) env PYTHONFAULTHANDLER=1 \
			SBI_STRESS_SECONDS=$(STRESS_SECONDS) \
			SBI_FUZZ_PROFILE=$(STRESS_FUZZ_PROFILE) SBI_REALCODE=full \
			.venv-$$v/bin/python -m pytest tests/test_stress.py \
			tests/test_fuzz.py tests/test_realcode.py \
			-q -p no:cacheprovider -rP \
			-o timeout=0 $(PYTEST_ARGS) || failed="$$failed $$v"; \
	done; \
	if [ -n "$$failed" ]; then \
		echo "==> stress FAILED on Python:$$failed" >&2; exit 1; \
	fi; \
	echo "==> stress passed on Python: $(VERSIONS)"

# --- demo / bench -----------------------------------------------------------
demo: check-pythons $(addprefix build-,$(NEWEST))
	.venv-$(NEWEST)/bin/python examples/demo.py $(DEMO_ARGS)

# Every Python runs even if an earlier one fails.  A full run rewrites that
# Python's section of benchmarks/RESULTS.md and benchmarks/ratios.png.
bench: check-pythons $(BENCH_BUILD_TARGETS)
	@failed=""; \
	for v in $(VERSIONS); do \
		echo "==> benchmarks on Python $$v"; \
		$(RUN_IN_SH) env SBI_BENCH_BUILT_FROM="$$(cat \
			.venv-bench-$$v/.sbi-built-from 2>/dev/null)" \
		.venv-bench-$$v/bin/python benchmarks/run.py $(BENCH_ARGS) \
			|| failed="$$failed $$v"; \
	done; \
	if [ -n "$$failed" ]; then \
		echo "==> benchmarks FAILED on Python:$$failed" >&2; exit 1; \
	fi

$(BENCH_VENV_TARGETS): bench-venv-%: | check-pythons
	@$(call RUN_IN,$*) bash tools/ensure-venv.sh .venv-bench-$* $(PY_$*) $(BENCH_PKGS)
	@if [ -n "$(BENCH_EXTRA_$*)" ] && [ ! -f .venv-bench-$*/.sbi-bench-extra ]; then \
		echo "==> installing $(BENCH_EXTRA_$*) into .venv-bench-$* (optional)"; \
		$(call RUN_IN,$*) .venv-bench-$*/bin/python -m pip install -q $(BENCH_EXTRA_$*) \
			|| echo "warning: $(BENCH_EXTRA_$*) did not install; the backport will be reported as not runnable" >&2; \
		touch .venv-bench-$*/.sbi-bench-extra; \
	fi

# The commit built (with +dirty for local changes under src/), recorded
# before the build: others may commit while the benchmarks run.
$(BENCH_BUILD_TARGETS): bench-build-%: bench-venv-%
	@rev=$$(git rev-parse --short HEAD 2>/dev/null || true); \
	if [ -n "$$rev" ] && [ -n "$$(git status --porcelain \
			--untracked-files=no -- src 2>/dev/null)" ]; then \
		rev="$$rev+dirty"; \
	fi; \
	echo "$$rev" > .venv-bench-$*/.sbi-built-from
	$(call pip_build,.venv-bench-$*,SBI_WERROR=$(SBI_WERROR),$*)

# --- sanitizers -------------------------------------------------------------
$(ASAN_VENV_TARGETS): asan-venv-%: | check-pythons
	@$(call RUN_IN,$*) bash tools/ensure-venv.sh .venv-asan-$* $(PY_$*) $(VENV_PKGS)

$(ASAN_BUILD_TARGETS): asan-build-%: asan-venv-%
	$(call pip_build,.venv-asan-$*,SBI_SANITIZE=1 SBI_DEBUG=1 SBI_WERROR=$(SBI_WERROR),$*)

asan: check-pythons $(ASAN_BUILD_TARGETS)
	@failed=""; \
	for v in $(VERSIONS); do \
		echo "==> pytest (ASan+UBSan) on Python $$v"; \
		asan_lib=$$($(RUN_IN_SH) gcc -print-file-name=libasan.so); \
		$(RUN_IN_SH) env LD_PRELOAD="$$asan_lib" $(ASAN_ENV) \
			PYTHONFAULTHANDLER=1 .venv-asan-$$v/bin/python $(PYTEST) \
			--capture=sys $(PYTEST_ARGS) \
			|| failed="$$failed $$v"; \
	done; \
	if [ -n "$$failed" ]; then \
		echo "==> sanitizer tests FAILED on Python:$$failed" >&2; exit 1; \
	fi; \
	echo "==> sanitizer tests passed on Python: $(VERSIONS)"

# --- valgrind ---------------------------------------------------------------
# A debug build (-O0 -g, C asserts on) in its own venv, memcheck of the smoke
# script; logs in build-valgrind/ (build/ is wiped by every build).
$(VALGRIND_VENV_TARGETS): valgrind-venv-%: | check-pythons
	@$(call RUN_IN,$*) bash tools/ensure-venv.sh .venv-valgrind-$* $(PY_$*) setuptools wheel

$(VALGRIND_BUILD_TARGETS): valgrind-build-%: valgrind-venv-%
	$(call pip_build,.venv-valgrind-$*,SBI_DEBUG=1 SBI_WERROR=$(SBI_WERROR),$*)

valgrind: check-pythons $(VALGRIND_BUILD_TARGETS)
	@if ! command -v $(VALGRIND) >/dev/null 2>&1; then \
		echo "error: $(VALGRIND) not found (apt-get install valgrind)" >&2; \
		exit 1; \
	fi
	@mkdir -p build-valgrind
	@failed=""; \
	for v in $(VERSIONS); do \
		log=build-valgrind/memcheck-$$v.log; \
		echo "==> valgrind memcheck of tools/smoke.py on Python $$v ($$log)"; \
		if $(RUN_IN_SH) env PYTHONMALLOC=malloc $(VALGRIND) \
				$(VALGRIND_FLAGS) --log-file=$$log \
				.venv-valgrind-$$v/bin/python tools/smoke.py; then \
			$(RUN_IN_SH) .venv-valgrind-$$v/bin/python \
				tools/valgrind_check.py $$log \
				|| failed="$$failed $$v"; \
		else \
			echo "smoke.py failed under valgrind; see $$log" >&2; \
			failed="$$failed $$v"; \
		fi; \
	done; \
	if [ -n "$$failed" ]; then \
		echo "==> valgrind FAILED on Python:$$failed" >&2; exit 1; \
	fi; \
	echo "==> valgrind clean on Python: $(VERSIONS)"

# --- Debian root -------------------------------------------------------------
# Builds $(DEBIAN_ROOT) from Debian unstable's packages (about 1 GB, 1-2
# minutes), unless it is already complete; debian-root-clean removes it.
# Needs root, debootstrap and Debian's mirror.
debian-root:
	@if [ -f $(DEBIAN_ROOT)/.sbi-root-ready ]; then \
		echo "==> $(DEBIAN_ROOT) is ready (make debian-root-clean to rebuild)"; \
	else \
		if ! command -v debootstrap >/dev/null 2>&1; then \
			echo "==> installing debootstrap"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq debootstrap >/dev/null; \
		fi; \
		bash tools/debian-root.sh build $(DEBIAN_ROOT); \
	fi

debian-root-clean:
	bash tools/debian-root.sh clean $(DEBIAN_ROOT)
	rm -rf .venv-deb*

# --- housekeeping -----------------------------------------------------------
format:
	@if command -v $(CLANG_FORMAT) >/dev/null 2>&1; then \
		$(CLANG_FORMAT) -i $(C_FILES); \
	else \
		echo "$(CLANG_FORMAT) not found; skipping (apt-get install clang-format)"; \
	fi

format-check:
	@if command -v $(CLANG_FORMAT) >/dev/null 2>&1; then \
		$(CLANG_FORMAT) --dry-run --Werror $(C_FILES); \
	else \
		echo "$(CLANG_FORMAT) not found; skipping (apt-get install clang-format)"; \
	fi

clean:
	rm -rf build build-valgrind dist src/*.egg-info *.egg-info .hypothesis \
		.pytest_cache
	rm -f src/subinterpreters/*.so
	find . -path './.venv*' -prune -o -path ./.git -prune -o \
		\( -name __pycache__ -o -name '*.gcda' -o -name '*.gcno' \) \
		-print0 | xargs -0 rm -rf

distclean: clean
	rm -rf .venv-*
