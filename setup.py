"""Build the optional C tracer; metadata lives in setup.cfg.

If the extension cannot be built (no compiler, no Python headers, an
interpreter it does not support), the package installs without it and
smiley-like records with its pure-Python tracer.
"""

import platform
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # distutils raises a variety of errors here
            self._warn(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._warn(exc)

    def _warn(self, exc):
        sys.stderr.write(
            f"WARNING: smiley-like's C tracer was not built ({exc}); "
            "the pure-Python tracer will be used, which records far more slowly.\n")


ext_modules = []
# The C tracer reads CPython's internal frame layout, which it knows for 3.11
# to 3.13 with the GIL.
if platform.python_implementation() == "CPython" and (3, 11) <= sys.version_info < (3, 14) \
        and not sysconfig.get_config_var("Py_GIL_DISABLED"):
    ext_modules.append(Extension("smiley_like.tracer._ctracer",
                                 sources=["smiley_like/tracer/_ctracer.c"],
                                 extra_compile_args=["-O2"] if sys.platform != "win32" else []))

# The writer's walk over msgpack bytes uses only the public C API.
if platform.python_implementation() == "CPython":
    ext_modules.append(Extension("smiley_like.store._scan",
                                 sources=["smiley_like/store/_scan.c"],
                                 extra_compile_args=["-O2"] if sys.platform != "win32" else []))

setup(ext_modules=ext_modules, cmdclass={"build_ext": OptionalBuildExt})
