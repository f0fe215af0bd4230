# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lab install bench clean book book-serve book-test

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The constraints file pins torch==2.13.0: on this project's CPU machines that is a wheel on disk.
	# JupyterLab (the lab extra) is installed too: the browser test runs the notebooks in it; and nbgrader
	# (the course extra): the instructor's kit is graded by nbgrader itself in the tests; and the book extra
	# (Sphinx, myst-nb, onnx): the tests build a page of the rendered book and export the decoders.
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,lab,course,book]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m fvae_lib demo

# The browser test (tests/test_browser.py) needs a Chromium; without one it is skipped, and said so here.
CHROMIUM := $(or $(FVAE_CHROMIUM),$(shell command -v chromium || command -v chromium-browser || command -v google-chrome))

# The web packages the rendered book serves (MathJax, onnxruntime-web), pinned in book/package-lock.json.
NPM := $(shell command -v npm)
WEB := book/node_modules/.installed
$(WEB): book/package.json book/package-lock.json
	cd book && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(WEB)

test: $(STAMP) $(if $(NPM),$(WEB))
	@test -n "$(CHROMIUM)" || echo "make test: the browser tests will be skipped (no Chromium); to enable them: apt-get install -y chromium chromium-driver"
	@test -n "$(NPM)" || echo "make test: the book's browser test will be skipped (no npm for its web packages); to enable it: apt-get install -y npm"
	$(PY) -m pytest $(PYTEST_ARGS)

# The course as a static site, executed in the book mode (the shipped reference models; minutes on a CPU, then
# cached), into build/book/html. book-serve serves it (the explorer needs http); book-test checks every page of it.
BOOK_ARGS ?=
book: $(STAMP) $(WEB)
	$(PY) -m fvae_lib book $(BOOK_ARGS)

book-serve: $(STAMP)
	$(PY) -m fvae_lib book --serve-only

book-test: $(STAMP) $(WEB)
	FVAE_BOOK_HTML=build/book/html $(PY) -m pytest tests/test_book.py -k "every_page or explorer"

lab: $(STAMP)
	$(PY) -m jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(STAMP)
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_train.py --startup
	@echo "longer: benchmarks/bench_fastpath.py (about 20 min), benchmarks/bench_metrics.py (about 9 min; 16 with --on-the-fly)"

clean:
	rm -rf $(VENV) .pytest_cache
