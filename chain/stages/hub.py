"""Loading models from the Hugging Face Hub, its cache, or local ``save_pretrained`` folders.

Shared by the stages built on diffusers and transformers (``controlnet``, ``hf``): the same
offline switch (``HF_HUB_OFFLINE``), the same one-line message when a model is missing (naming
the repository and ``hf download REPO``), and the same quiet loading.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from chain.errors import ChainError, MissingWeightsError


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks for the Hugging Face cache only."""
    import huggingface_hub.constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    return flag or bool(huggingface_hub.constants.HF_HUB_OFFLINE)


def hub_cache() -> str:
    """The Hugging Face hub cache folder (``~/.cache/huggingface/hub`` or ``$HF_HOME/hub``)."""
    import huggingface_hub.constants

    return str(huggingface_hub.constants.HF_HUB_CACHE)


def is_local(source: str) -> bool:
    """A folder rather than a Hub repository id (``owner/name``)."""
    return source.startswith((".", "/", "~")) or source.count("/") > 1 or "\\" in source or Path(source).exists()


def short_name(source: str) -> str:
    """A folder's own name, or the repository id as given: for descriptions."""
    return Path(source).name if is_local(source) else source


def missing_model(role: str, source: str, alternative: str, error: BaseException) -> ChainError:
    """One line: which model is missing and how to get it.

    Args:
        role: what the model is, e.g. "ControlNet" or "segmenter".
        source: the repository id or folder the user (or a default) named.
        alternative: how else to point at a local copy, e.g. "pass --seg hf:FOLDER (a transformers folder)".
        error: what the loader raised; its first line is quoted for a folder that exists but fails.
    """
    if is_local(source):
        path = Path(source).expanduser()
        if not path.is_dir():
            return ChainError(f"{role} folder not found: {path}")
        return ChainError(f"could not load the {role} from {path}: {str(error).strip().splitlines()[0]}")
    get = f"with internet access run `hf download {source}` (or `huggingface-cli download {source}`), or {alternative}"
    if hub_offline():
        return MissingWeightsError(f"{role} {source!r} is not in the Hugging Face cache ({hub_cache()}) and "
                                   f"HF_HUB_OFFLINE is set: {get}")
    return MissingWeightsError(f"could not load {role} {source!r} from the Hugging Face Hub or its cache "
                               f"({hub_cache()}): {get}")


def in_cache_or_folder(source: str, file: str) -> bool:
    """Whether ``file`` of ``source`` is on disk now (a folder, or the Hub cache); fetches nothing."""
    return local_file(source, file) is not None


def local_file(source: str, file: str) -> Path | None:
    """Where ``file`` of ``source`` is on disk now (a folder, or the Hub cache), else None; fetches nothing."""
    if is_local(source):
        path = Path(source).expanduser() / file
        return path if path.is_file() else None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(source, file)
    return Path(found) if isinstance(found, str) else None


@contextlib.contextmanager
def quiet_loading(*libraries: str) -> Iterator[None]:
    """Silence the progress bars and advice of ``libraries`` ("diffusers", "transformers") while loading.

    Errors still raise.
    """
    modules = [importlib.import_module(f"{library}.utils.logging") for library in libraries]
    before = [(module.get_verbosity(), module.is_progress_bar_enabled()) for module in modules]
    for module in modules:
        module.set_verbosity_error()
        module.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for module, (level, bars) in zip(modules, before):
            module.set_verbosity(level)
            if bars:
                module.enable_progress_bar()
