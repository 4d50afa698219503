"""Which code is traced: decided once per file name, never per event."""

import fnmatch
import importlib.util
import os
import site
import sys
import sysconfig

from smiley_like.tracer import PACKAGE_DIR


def _dirs(*paths):
    out = []
    for path in paths:
        if path:
            path = os.path.realpath(path)
            out.append(path.rstrip(os.sep) + os.sep)
    return tuple(dict.fromkeys(out))


def site_packages_dirs():
    paths = list(site.getsitepackages()) if hasattr(site, "getsitepackages") else []
    paths.append(site.getusersitepackages())
    for scheme_vars in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        found = sysconfig.get_paths(vars=scheme_vars)
        paths += [found["purelib"], found["platlib"]]
    return _dirs(*paths)


def stdlib_dirs():
    paths = []
    for scheme_vars in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix,
                             "installed_base": sys.base_prefix}):
        found = sysconfig.get_paths(vars=scheme_vars)
        paths += [found["stdlib"], found["platstdlib"]]
    return _dirs(*paths)


def _resolve_include(item):
    """A path, or the name of an importable package or module."""
    if os.path.exists(item):
        path = os.path.realpath(item)
        return path + os.sep if os.path.isdir(path) else path
    try:
        spec = importlib.util.find_spec(item)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return os.path.realpath(item)
    if spec.submodule_search_locations:
        return os.path.realpath(list(spec.submodule_search_locations)[0]) + os.sep
    return os.path.realpath(spec.origin or item)


class FileFilter:
    """Answers "do we trace code from this file?", caching the answer per file name.

    By default the user's own code is traced: not the standard library, not
    site-packages, and never smiley_like itself.  ``include`` takes paths or
    package names; ``exclude`` takes globs matched against the absolute path.
    """

    def __init__(self, trace_stdlib=False, trace_site_packages=False, include=(), exclude=()):
        self.include = tuple(_resolve_include(item) for item in include)
        self.exclude = tuple(exclude)
        site_dirs = site_packages_dirs()
        skipped = () if trace_site_packages else site_dirs
        self._site = site_dirs
        self._skipped = skipped
        self._stdlib = () if trace_stdlib else stdlib_dirs()
        self._cache = {}

    def wanted(self, filename):
        answer = self._cache.get(filename)
        if answer is None:
            answer = self._cache[filename] = self._decide(filename)
        return answer

    def _decide(self, filename):
        if not filename or filename.startswith("<"):
            return False
        path = os.path.realpath(os.path.abspath(filename))
        if path.startswith(PACKAGE_DIR):
            return False
        if any(fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(filename, pattern)
               for pattern in self.exclude):
            return False
        if any(path == item or path.startswith(item) for item in self.include):
            return True
        if path.startswith(self._skipped):
            return False
        if path.startswith(self._site):  # site-packages inside the stdlib dir, traced on request
            return True
        return not path.startswith(self._stdlib)
