"""chain's cache of ONNX exports, which heals itself: each export is named after a digest of its
own bytes, checked whenever it is read.

An export of ``NAME.onnx`` is stored as ``NAME.<sha256, 16 hex>.onnx``, written under a hidden
staging name and renamed into place in one step, so no reader sees half a file and no second
file has to agree with it. A file under an export's name whose bytes do not give its digest
(truncated, foreign, written over), anything that is not a plain file there (a folder, a link:
removed, never followed), one that cannot be read, and a ``NAME.onnx`` of chain versions that
wrote no digest are removed and the export made again; hidden staging parts of processes that
no longer run are removed too (`chain.media.targets.remove_stale_staging`). A cache folder that
cannot be written costs an export per run, said once as a warning, not the run.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import warnings
from collections.abc import Callable
from pathlib import Path

from chain.errors import ChainWarning
from chain.media.targets import discard, remove_stale_staging, staging_path

DIGEST_CHARS = 16  # of the sha256 in the name: 64 bits tell a damaged file from a good one


def stored_name(base: Path, model: bytes) -> Path:
    """Where ``model``, an export of ``base`` (``NAME.onnx``), is stored: ``NAME.<digest>.onnx``."""
    return base.with_name(f"{base.stem}.{hashlib.sha256(model).hexdigest()[:DIGEST_CHARS]}{base.suffix}")


def _candidates(base: Path) -> list[Path]:
    """The entries of ``base``'s folder stored under its name (`stored_name`), and ``base`` itself."""
    named = re.compile(rf"{re.escape(base.stem)}\.[0-9a-f]{{{DIGEST_CHARS}}}{re.escape(base.suffix)}")
    try:
        return sorted(entry for entry in base.parent.iterdir() if entry.name == base.name or named.fullmatch(entry.name))
    except OSError:
        return []


def _verified(path: Path, base: Path) -> bytes | None:
    """``path``'s bytes when it is a plain file whose bytes give its name's digest, else None."""
    try:
        if path == base or not stat.S_ISREG(path.lstat().st_mode):
            return None
        with path.open("rb") as stream:  # one read: the bytes checked are the bytes used
            model = stream.read()
    except OSError:
        return None
    return model if stored_name(base, model) == path else None


def cached_export(base: Path, export: Callable[[], bytes]) -> bytes:
    """The bytes of the export ``base`` names: a verified copy from the cache, else ``export()``'s,
    stored for the next run. Bad entries under its name are removed (see the module)."""
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        _warn_unwritable(base, error)
        return export()
    remove_stale_staging(base)
    found = None
    for path in _candidates(base):
        model = _verified(path, base) if found is None else None
        if model is not None:
            found = model
        elif found is None or path == base:
            _remove(path)
    if found is not None:
        return found
    model = export()
    _store(base, model)
    return model


def _store(base: Path, model: bytes) -> None:
    staging = staging_path(base)
    try:
        with staging.open("xb") as stream:
            stream.write(model)
        os.replace(staging, stored_name(base, model))
    except OSError as error:
        _warn_unwritable(base, error)
    finally:
        staging.unlink(missing_ok=True)


def _remove(path: Path) -> None:
    """Remove a bad cache entry (a folder with what is in it; a link itself, never what it points to)."""
    try:
        discard(path)
    except OSError:
        pass  # a later run tries again; this one uses a fresh export meanwhile


def _warn_unwritable(base: Path, error: OSError) -> None:
    reason = (error.strerror or type(error).__name__).lower()
    warnings.warn(f"chain's ONNX cache {base.parent} cannot be written ({reason}): the network is "
                  "exported again each run; set $CHAIN_WEIGHTS to a writable folder", ChainWarning, stacklevel=3)
