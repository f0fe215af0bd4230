# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lab install bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The constraints file pins torch==2.13.0: on this project's CPU machines that is a wheel on disk.
	# JupyterLab (the lab extra) is installed too: the browser test runs the notebooks in it; and nbgrader
	# (the course extra): the instructor's kit is graded by nbgrader itself in the tests.
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,lab,course]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m fvae_lib demo

# The browser test (tests/test_browser.py) needs a Chromium; without one it is skipped, and said so here.
CHROMIUM := $(or $(FVAE_CHROMIUM),$(shell command -v chromium || command -v chromium-browser || command -v google-chrome))

test: $(STAMP)
	@test -n "$(CHROMIUM)" || echo "make test: the browser test will be skipped (no Chromium); to enable it: apt-get install -y chromium chromium-driver"
	$(PY) -m pytest $(PYTEST_ARGS)

lab: $(STAMP)
	$(PY) -m jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(STAMP)
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_train.py --startup
	@echo "longer: benchmarks/bench_fastpath.py (about 20 min), benchmarks/bench_metrics.py (about 9 min; 16 with --on-the-fly)"

clean:
	rm -rf $(VENV) .pytest_cache
