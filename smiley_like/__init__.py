"""smiley_like: a recording debugger for Python."""

__version__ = "0.1.0"
