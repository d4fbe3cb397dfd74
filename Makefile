# edgec developer Makefile.
#   make demo   install what is missing, build the bundled example model as cortex-m4 firmware,
#               run it in QEMU and print its flash/RAM
#   make test   install what is missing (Debian packages, Python packages), run the test suite
#   make bench  regenerate the benchmark table (benchmarks/README.md, README.md)
#   make fuzz   the long differential fuzzing run (FUZZ_GRAPHS per kind, see docs/TRUST.md)
PY ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
EDGEC := $(VENV)/bin/edgec
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Cross toolchains and emulators (see ../shared/docs/FIRMWARE.md).
# chromium: tests/test_size.py opens the HTML size report in it (headless).
APT_PKGS := gcc-arm-none-eabi binutils-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm \
            gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc cmake chromium
EXTRAS ?= dev,ml,tvm,tf
PYTEST_ARGS ?=
DEMO_MODEL := firmware_examples/kws/model/kws_ref_model.tflite
FUZZ_SEED ?= 1
FUZZ_GRAPHS ?= 3000
FUZZ_ARGS ?=

.PHONY: all deps deps-python deps-apt demo test test-fast test-slow fuzz bench bench-tvm clean

all: test

deps: deps-apt deps-python

deps-apt:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(VENV)/.core: pyproject.toml
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e .
	touch $@

$(VENV)/.extras-$(EXTRAS): $(VENV)/.core pyproject.toml
	$(PYTHON) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

deps-python: $(VENV)/.extras-$(EXTRAS)

# The bundled keyword-spotting model as firmware for a Cortex-M4F: compile, link with the
# self-checking harness, run it in QEMU (mps2-an386), print flash and RAM of the ELF.
demo: deps-apt $(VENV)/.core
	$(EDGEC) build $(DEMO_MODEL) --target cortex-m4 -o build/demo --name kws --firmware
	$(MAKE) -C build/demo firmware run
	$(EDGEC) size build/demo/firmware.elf --symbols 0

# The benchmark table of benchmarks/README.md and README.md (MLPerf Tiny int8 models, cortex-m4, QEMU).
bench: deps-apt $(VENV)/.core
	$(PYTHON) benchmarks/run.py

# Native vs TVM backend on the float MLPerf Tiny models (needs the tvm extra).
bench-tvm: deps-apt $(VENV)/.extras-$(EXTRAS)
	$(PYTHON) benchmarks/tvm_vs_native.py

test: deps
	$(PYTHON) -m pytest -q -n 2 $(PYTEST_ARGS)

test-fast: deps
	$(PYTHON) -m pytest -q -n 2 -m "not slow" $(PYTEST_ARGS)

test-slow: deps
	$(PYTHON) -m pytest -q -n 2 -m slow $(PYTEST_ARGS)

fuzz: deps
	mkdir -p build
	nice $(PYTHON) -m edgec.fuzz --graphs $(FUZZ_GRAPHS) --seed $(FUZZ_SEED) --cross --sanitize \
	  --save tests/fuzz_regressions --json build/fuzz-report.json $(FUZZ_ARGS)

clean:
	rm -rf build .pytest_cache
