# Sphinx configuration of the rendered book. Not run by hand: `make book` (python -m fvae_lib book) copies this
# folder, the README, the notebooks and the instructor's guide into a staging folder, then runs Sphinx there
# with the FVAE_BOOK_* settings below in its environment (fvae_lib/book.py).
import os

project = "FactorVAE from first principles"
author = "the fvae_lib authors"
copyright = "the fvae_lib authors, MIT licence"
repository = os.environ.get("FVAE_BOOK_REPO", "fvae-course/factorvae")
branch = os.environ.get("FVAE_BOOK_BRANCH", "main")

extensions = ["myst_nb", "sphinx.ext.githubpages"]  # githubpages: a .nojekyll, for any static host
exclude_patterns = ["_build", "_originals", "node_modules", "**.ipynb_checkpoints"]  # _originals: the downloads

# The notebooks run in the builder's mode (FVAE_MODE, "book": the shipped reference models, nothing they hold
# trained again), each in a fresh kernel. jupyter-cache keeps the outputs: an unchanged notebook is not run
# again. The builder names the cache folder after the library's sources, so a changed library runs them anew.
nb_execution_mode = os.environ.get("FVAE_BOOK_EXECUTE", "cache")
nb_execution_cache_path = os.environ.get("FVAE_BOOK_CACHE", ".jupyter_cache")
nb_execution_timeout = int(os.environ.get("FVAE_BOOK_TIMEOUT", "1800"))
nb_execution_raise_on_error = True  # a cell that fails fails the build, as it fails the tests
nb_execution_show_tb = True
nb_merge_streams = True
nb_ipywidgets_js = {}  # no widget JavaScript from a CDN; the widget cells say to open the notebook instead
nb_kernel_rgx_aliases = {".*": "python3"}

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "html_image"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # the notebooks' section numbers are their own

# MathJax from this site, not a CDN (npm's mathjax 3, copied into _static/mathjax by the builder)
mathjax_path = "mathjax/tex-chtml.js"

html_theme = "sphinx_book_theme"
html_title = project
html_favicon = "_static/favicon.svg"  # a site of its own: no request for a /favicon.ico that is not there
html_static_path = ["_static"]
html_css_files = ["explorer.css"]
html_js_files = ["explorer.js"]
html_context = {"default_mode": "auto"}  # the theme logs an error at a first visit without one
html_last_updated_fmt = "%Y-%m-%d"
html_theme_options = {
    "repository_url": f"https://github.com/{repository}",
    "repository_branch": branch,
    "use_repository_button": True,
    "use_download_button": False,  # it would hand out the staged notebook; each page's banner links the one in git
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
    "show_toc_level": 2,
}
