"""Importing pycaffe for the worker without its image helpers: `caffe/__init__.py` imports `caffe.io`, which
imports scikit-image and SciPy at its top (about 1 s, most of the worker's start-up) for `load_image`,
`Transformer` and the like, which training never calls. `caffe.io` is registered as a module whose code
runs on the first use of one of its names, so a Python layer or a prompt that uses it still gets it.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types


class _OnFirstUse(types.ModuleType):
    """A module whose code has not run yet. Module attributes such as `__spec__` are there already, so the
    import system can register and bind it; the first other name asked for runs the code."""

    def __getattr__(self, name: str):   # called only for names the module does not have
        if not self.__dict__.get("_harness_loaded"):
            self.__dict__["_harness_loaded"] = True
            self.__spec__.loader.exec_module(self)
            if name in self.__dict__:
                return self.__dict__[name]
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")


def load():
    """`import caffe`, with `caffe.io` run on first use."""
    if "caffe" not in sys.modules:
        package = importlib.util.find_spec("caffe")   # finds the package without running its __init__
        io = (importlib.machinery.PathFinder.find_spec("caffe.io", package.submodule_search_locations)
              if package is not None and package.submodule_search_locations else None)
        if io is not None and io.loader is not None:
            module = importlib.util.module_from_spec(io)
            module.__class__ = _OnFirstUse
            sys.modules["caffe.io"] = module
    import caffe
    return caffe
