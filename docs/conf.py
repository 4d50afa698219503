"""Sphinx configuration for the smiley-like documentation.

Build with::

    sphinx-build -W -b html docs docs/_build/html
"""

import os
import sys

# Document the checkout this file belongs to, installed or not.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import smiley_like  # noqa: E402

project = "smiley-like"
version = smiley_like.__version__
release = version

root_doc = "index"
extensions = []
exclude_patterns = ["_build"]
language = "en"

pygments_style = "sphinx"
html_theme = "alabaster"
html_title = f"{project} {release}"
html_theme_options = {
    "description": "A recording debugger for Python",
    "fixed_sidebar": True,
}
