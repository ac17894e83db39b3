"""Our own checkpoint format, a folder with ``model.safetensors`` and ``config.json``, and where
the user keeps weights (`chain.weights.locations`).

``config.json`` holds ``{"model": KIND, "config": {...dataclass fields...}, "meta": {...}}``,
where ``meta`` carries what travels with the weights: the label space name, the
preprocessing a segmenter expects, where the weights came from. Loading never
unpickles anything.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from chain.errors import ChainError
from chain.media.targets import check_target, remove_stale_staging, replace_with, staging_path
from chain.weights.locations import CONFIG_FILE
from chain.weights.schema import Schema, check_meta

WEIGHTS_FILE = "model.safetensors"
# Below this many optimisation steps (`chain train` records "step" in a checkpoint's meta) a
# generator's paintings are still mostly its initialisation: a default SPADE run on CamVid
# takes about 4,600 (50 epochs), NVIDIA's took hundreds of thousands.
FEW_TRAINING_STEPS = 1000
#: Bounds on the JSON files chain reads (a checkpoint's config.json, a transformers config,
#: labels.json): the largest real one, ADE20K DeepLab's per-channel scales, is about 0.1 MB.
MAX_JSON_BYTES = 16 << 20
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


def training_caveat(meta: dict[str, Any]) -> str | None:
    """``"trained 12 steps"`` when a `chain train` checkpoint's meta records fewer than
    `FEW_TRAINING_STEPS`, else None (also for checkpoints that record no training)."""
    step = meta.get("step")
    if isinstance(step, int) and not isinstance(step, bool) and step < FEW_TRAINING_STEPS:
        return f"trained {step} step{'' if step == 1 else 's'}"
    return None


@dataclasses.dataclass
class Checkpoint:
    """What `load_checkpoint` returns: the model kind, its config fields, metadata and weights."""

    model: str
    config: dict[str, Any]
    meta: dict[str, Any]
    state_dict: dict[str, torch.Tensor]


def save_checkpoint(
    directory: str | os.PathLike,
    *,
    model: str,
    config: Any,
    state_dict: dict[str, torch.Tensor],
    meta: dict[str, Any] | None = None,
    extra_files: dict[str, dict[str, torch.Tensor]] | None = None,
) -> Path:
    """Write a checkpoint folder atomically (a temporary folder renamed into place).

    An existing folder is replaced only if it is empty or exactly the checkpoint chain recorded
    writing there (`chain.media.targets`).

    ``config`` may be a dataclass instance or a plain dict. ``extra_files`` writes more
    safetensors files beside the weights (optimizer state, for instance).
    """
    directory = Path(directory)
    config_dict = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    check_target(directory, "checkpoint")
    directory.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(directory)
    staging = staging_path(directory)
    staging.mkdir()
    try:
        tensors = {key: value.detach().cpu().contiguous() for key, value in state_dict.items()}
        save_file(tensors, str(staging / WEIGHTS_FILE))
        for name, extra in (extra_files or {}).items():
            save_file({k: v.detach().cpu().contiguous() for k, v in extra.items()}, str(staging / name))
        document = {"model": model, "config": config_dict, "meta": meta or {}}
        (staging / CONFIG_FILE).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        _apply_umask(staging)
        replace_with(staging, directory, "checkpoint", option="checkpoint folder")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def _apply_umask(folder: Path) -> None:
    """safetensors writes 0600 files; give them the user's usual modes."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for file in folder.iterdir():
        file.chmod(0o666 & ~umask)


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file's content; a one-line `ChainError` naming ``path`` when it is not readable JSON,
    is larger than `MAX_JSON_BYTES`, nests deeper than `MAX_JSON_DEPTH` (Python's parser would
    recurse until a RecursionError) or repeats a key in one object (the parser keeps the last)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise ChainError(f"{path} is {size / 2 ** 20:.0f} MB, larger than any JSON file chain reads "
                             f"({MAX_JSON_BYTES >> 20} MB); it is damaged, or not the file expected there")
        text = path.read_text(encoding="utf-8")
        depth = json_depth(text)
        if depth > MAX_JSON_DEPTH:
            raise ChainError(f"{path} nests {depth} levels deep, more than the {MAX_JSON_DEPTH} chain reads; "
                             "it is damaged, or not the file expected there")
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise ChainError(f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
                         "it is damaged, or not the file expected there") from None
    except _RepeatedKey as repeated:
        raise ChainError(f"{path} gives key {repeated.args[0]!r} twice in one object; it is damaged, or not the file "
                         "expected there") from None
    except UnicodeDecodeError:
        raise ChainError(f"{path} is not a text file; it is damaged, or not the file expected there") from None
    except IsADirectoryError:
        raise ChainError(f"{path} is a folder, not the JSON file chain writes there") from None
    except PermissionError:
        raise ChainError(f"cannot read {path}: permission denied") from None
    except FileNotFoundError:
        raise ChainError(f"{path} is missing") from None


class _RepeatedKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        raise _RepeatedKey(next(key for key, _ in pairs if key in seen or seen.add(key)))
    return document


def json_depth(text: str) -> int:
    """How deep the arrays and objects of JSON ``text`` nest (brackets inside strings do not count)."""
    import numpy as np

    codes = np.frombuffer(_JSON_STRING.sub("", text).encode(), dtype=np.uint8)
    steps = ((codes == ord("[")) | (codes == ord("{"))).astype(np.int32)
    steps -= (codes == ord("]")) | (codes == ord("}"))
    return int(np.cumsum(steps).max(initial=0))


def read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Every tensor of a ``.safetensors`` file; a one-line `ChainError` when it is missing, truncated or foreign."""
    from safetensors import SafetensorError

    path = Path(path)
    if not path.is_file():
        raise ChainError(f"{path} is missing" if not path.exists() else f"{path} is not a file")
    try:
        return load_file(str(path))
    except SafetensorError as error:
        raise ChainError(f"{path} is damaged or not a safetensors file ({str(error).strip()[:200]})") from None
    except PermissionError:
        raise ChainError(f"cannot read {path}: permission denied") from None


def load_checkpoint(directory: str | os.PathLike, *, expect_model: str | None = None,
                    meta_schema: Schema | None = None, remedy: str = "use another checkpoint") -> Checkpoint:
    """Read a checkpoint folder written by `save_checkpoint`.

    Raises `ChainError` with a one-line reason when the folder is missing, incomplete, damaged,
    holds a different kind of model than ``expect_model``, or has a meta that ``meta_schema``
    (`chain.weights.schema`) refuses (``remedy`` then says how to get a good one). The meta is
    checked before the weights are read; their dtypes and values are checked against the
    network they are loaded into (`chain.weights.fit.check_fit`).
    """
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not config_path.is_file() or not weights_path.is_file():
        raise ChainError(f"{directory} is not a chain checkpoint (expected {CONFIG_FILE} and {WEIGHTS_FILE} in it)")
    document = read_json(config_path)
    if not isinstance(document, dict) or not isinstance(document.get("model"), str):
        raise ChainError(f"{config_path} does not describe a chain checkpoint (no \"model\" name in it)")
    for key in ("config", "meta"):
        if not isinstance(document.get(key, {}), dict):
            raise ChainError(f"{config_path}: \"{key}\" must be a JSON object, not {type(document[key]).__name__}")
    if expect_model is not None and document["model"] != expect_model:
        raise ChainError(f"{directory} holds a {document['model']!r} model, not {expect_model!r}")
    if meta_schema is not None:
        check_meta(document.get("meta", {}), meta_schema, source=config_path, remedy=remedy)
    return Checkpoint(
        model=document["model"],
        config=document.get("config", {}),
        meta=document.get("meta", {}),
        state_dict=read_safetensors(weights_path),
    )
