"""Caffe's protobuf classes without importing pycaffe (which loads libcaffe and scikit-image).

The supervisor, the log parser and the tests only need `caffe_pb2`; loading it from pycaffe's folder by
path keeps them light and keeps libcaffe out of every process but the worker.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from .errors import HarnessError

_MODULE = "caffe.proto.caffe_pb2"


def caffe_pb2():
    if _MODULE in sys.modules:
        return sys.modules[_MODULE]
    spec = importlib.util.find_spec("caffe")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError("pycaffe is not importable from this Python. Run `make setup` (scripts/setup.sh), "
                           "which builds Caffe and links it into .venv.")
    path = Path(list(spec.submodule_search_locations)[0]) / "proto" / "caffe_pb2.py"
    module_spec = importlib.util.spec_from_file_location(_MODULE, path)
    module = importlib.util.module_from_spec(module_spec)
    # Registered under pycaffe's own name so that a later `import caffe` reuses it instead of
    # registering the same protobuf descriptors twice.
    sys.modules[_MODULE] = module
    module_spec.loader.exec_module(module)
    return module
