# Two entry points for a newcomer: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= runs/demo

.PHONY: setup demo test lint browser clean

setup: $(VENV)/.installed

# constraints-cpu.txt pins the CPU torch wheel these machines carry; an open `torch` would pull a CUDA build.
$(VENV)/.installed: pyproject.toml constraints-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints-cpu.txt -e '.[test]'
	touch $@

demo: setup
	$(BIN)/tokendistill demo --output $(DEMO_DIR)

lint: setup
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

# The report's browser test drives Debian's Chromium; without it that one test is skipped.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); export DEBIAN_FRONTEND=noninteractive; \
		$$SUDO apt-get install -y -q chromium chromium-driver >/dev/null || \
		{ $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null; }; }

clean:
	rm -rf $(VENV) runs
