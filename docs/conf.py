"""Sphinx configuration of the ase_bodyorder site (``make docs`` -> docs/_build/html)."""

import os
import sys
import warnings
from pathlib import Path

from sphinx.deprecation import RemovedInSphinx10Warning

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

project = "ase_bodyorder"
author = "the ase_bodyorder developers"
copyright = "2026, the ase_bodyorder developers"  # noqa: A001 (Sphinx's name)

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx_autodoc_typehints",
    "sphinxarg.ext",
    "sphinx_gallery.gen_gallery",
    "chemiscope.sphinx",
    "bodyorder_docs",  # docs/_ext: offline chemiscope views, public API docstring check
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_ext", "**/GALLERY_HEADER.rst", "views/*.py"]
html_theme = "furo"
html_title = "ase_bodyorder"
html_static_path: list[str] = []

myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
always_document_param_types = False
typehints_fully_qualified = False
napoleon_google_docstring = False

# the gallery: every script in examples/ runs during the build (a failure fails it)
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "gallery",
    "filename_pattern": r".*\.py",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "show_signature": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "reset_modules": ("matplotlib",),
}

# third-party noise checked to be harmless: included reports start at heading levels of
# their own; sphinx-autodoc-typehints calls an API that Sphinx 10 will remove
suppress_warnings = ["myst.header"]
warnings.filterwarnings("ignore", category=RemovedInSphinx10Warning)
