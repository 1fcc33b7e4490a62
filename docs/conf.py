"""Sphinx configuration: the tutorials as a sphinx-gallery, the API from the docstrings.

Build (quick mode, about half a minute on 2 cores; needs ``pip install -e '.[docs]'`` and Graphviz's
``dot`` program, ``apt-get install graphviz``)::

    python -m sphinx -b html docs docs/_build/html

The tutorial scripts stay as they are (percent-format cells with Markdown text); ``percent_to_gallery``
writes a sphinx-gallery copy of each into ``_gallery_src`` (Markdown text turned into reST) and the
gallery executes that copy in quick mode (``MINIGRAD_QUICK=1``; set it to 0 for the full runs).  Each
tutorial saves its figures into ``MINIGRAD_FIGURES``; the ``saved_figures`` scraper puts every PNG a
cell wrote under that cell, and the build stops if a figure a tutorial names was not made.  Math renders with a MathJax copied from the ``sphinx-mathjax-offline``
package: the site needs no network.
"""
from __future__ import annotations

import os
import sys

DOCS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(DOCS)
sys.path.insert(0, ROOT)  # document (and run the tutorials against) this checkout's minigrad
sys.path.insert(0, os.path.join(DOCS, "_ext"))

os.environ.setdefault("MINIGRAD_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
FIGURES = os.path.join(DOCS, "_build", "tutorial_figures")
os.environ["MINIGRAD_FIGURES"] = FIGURES

import minigrad_docs  # noqa: E402 - docs/_ext: tutorial conversion, figure scraper, family table

minigrad_docs.write_gallery_sources(ROOT, os.path.join(DOCS, "_gallery_src"))
minigrad_docs.write_family_table(ROOT, os.path.join(DOCS, "_generated", "family.rst"))
minigrad_docs.reset_figures(FIGURES)
minigrad_docs.reset_figures(os.path.join(DOCS, "tutorials"))  # generated: every build runs the tutorials

project = "minigrad"
author = "the minigrad authors"
copyright = "minigrad authors, MIT licence"  # noqa: A001 - Sphinx's name
release = "0.1.0"

extensions = ["minigrad_docs", "science_links", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode", "sphinx.ext.mathjax",
              "sphinx_gallery.gen_gallery", "sphinx-mathjax-offline"]
exclude_patterns = ["_build", "_gallery_src", "_generated", "**/sg_execution_times.rst", "tutorials/sg_execution_times.rst"]
html_theme = "alabaster"
html_theme_options = {"description": "second-order autodiff, Maxout, and the gradient-regularization family",
                      "fixed_sidebar": True, "show_relbars": True, "page_width": "1180px", "body_max_width": "none"}
html_static_path = []
html_title = "minigrad"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
# No suppress_warnings: a module autodoc cannot import, or any docutils complaint, fails the test build (-W).


sphinx_gallery_conf = {
    "examples_dirs": "_gallery_src",
    "gallery_dirs": "tutorials",
    "filename_pattern": r"/\d\d_",             # execute every tutorial
    "image_scrapers": ("minigrad_docs",),      # minigrad_docs.SavedFigures
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,           # a failing tutorial fails the build
    "download_all_examples": False,
    "show_memory": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "write_computation_times": False,
    # the setup the pages hide (minigrad_docs.percent_to_gallery), for the notebook download
    "first_notebook_cell": ("import os, sys\n"
                            "QUICK = os.environ.get('MINIGRAD_QUICK', '1') == '1'  # quick mode, as on the site\n"
                            "FIGURES = os.environ.get('MINIGRAD_FIGURES') or 'figures'  # where figures are saved"),
}


