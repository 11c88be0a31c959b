"""What a replay must find unchanged: the data files a run read and the Caffe build it ran on.

Recorded into run.json by `harness train`, checked by `harness reproduce` before anything runs.
"""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Optional

from . import caffe_dir
from .caffe_dir import CaffeDir


def caffe_prefix() -> Optional[Path]:
    """The folder scripts/setup.sh built Caffe into (`<prefix>/python/caffe`), found without importing caffe."""
    spec = importlib.util.find_spec("caffe")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).resolve().parent.parent.parent


def caffe_build(user: Optional[CaffeDir] = None) -> dict:
    """Identity of the Caffe build: its BUILD_INFO lines (setup.sh's builds) or, for a user's build
    (`--caffe`), its path, version and git describe; and the checksum of libcaffe."""
    prefix = user.root if user else caffe_prefix()
    if prefix is None:
        return {}
    identity = {"prefix": str(prefix)}
    if user:
        identity.update(caffe_dir.identity(user))
    info = prefix / "BUILD_INFO"
    if info.is_file():
        identity["build_info"] = info.read_text()
    folders = user.lib_dirs if user else [prefix / "lib"]
    libraries = sorted(lib for folder in folders for lib in folder.glob("libcaffe.so*"))
    real = [lib for lib in libraries if not lib.is_symlink()]
    if real:
        identity["libcaffe_sha256"] = sha256(real[0])
    return identity


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_files(nets) -> dict:
    """path -> sha256 for every file the data layers of these NetParameters read.

    HDF5Data: the list file and each file it names; Data (LMDB): the database file; ImageData and
    WindowData: the list file (the images themselves are not hashed: say so where it matters).
    """
    files = {}
    for net in nets:
        for layer in net.layer:
            if layer.HasField("hdf5_data_param") and layer.hdf5_data_param.source:
                source = Path(layer.hdf5_data_param.source)
                files[str(source)] = sha256(source)
                for line in source.read_text().splitlines():
                    if line.strip():
                        files[line.strip()] = sha256(Path(line.strip()))
            elif layer.HasField("data_param") and layer.data_param.source:
                database = Path(layer.data_param.source) / "data.mdb"
                if database.is_file():
                    files[str(database)] = sha256(database)
            else:
                for sub in ("image_data_param", "window_data_param"):
                    if layer.HasField(sub) and getattr(layer, sub).source:
                        source = Path(getattr(layer, sub).source)
                        files[str(source)] = sha256(source)
    return files


def changed_data_files(recorded: dict) -> list:
    """[(path, why)] for recorded data files that are gone or differ now."""
    changes = []
    for path, digest in recorded.items():
        if not Path(path).is_file():
            changes.append((path, "missing"))
        elif sha256(Path(path)) != digest:
            changes.append((path, "contents changed"))
    return changes
