"""Networks built from a user's files without trusting them: weights read as tensors only, and a
config checked against the weights' shapes before any memory is allocated for it.

A checkpoint's ``config.json`` says how big the network is (``ngf``, ``filters``…); building it
straight away lets a wrong or hostile number allocate gigabytes before the weights are ever
compared. `check_fit` builds the network on PyTorch's meta device (shapes, no storage), compares
its state_dict with the weights, and only then may the caller build it for real (`build_fitted`).
Every mismatch becomes one line: counts of missing, unexpected and mis-shaped keys and the first
few names, not torch's list of every key. Then every tensor's kind of number and values
(`conform_tensors`): a NaN in one bias, or integer weights where floats belong, would otherwise
load silently and paint nothing but background.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from chain.errors import ChainError, first_line

Module = TypeVar("Module", bound=nn.Module)
SHOWN = 3  # names shown per kind of mismatch
#: Float weights chain accepts where the network has floats, cast to the network's dtype: the
#: precisions checkpoints are shared in. float8 and complex numbers are not weights of these networks.
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
#: Integer buffers (BatchNorm's num_batches_tracked) may be stored in any of these.
INTEGER_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
# Building a network from a config: what a wrong type or value in it makes the constructor raise.
CONFIG_ERRORS = (TypeError, ValueError, RuntimeError, ZeroDivisionError, OverflowError, KeyError, IndexError)


def describe_mismatch(expected: Mapping[str, torch.Tensor], given: Mapping[str, Any], *,
                      optional: Callable[[str], bool] = lambda key: False) -> str | None:
    """None when ``given`` has exactly the keys and shapes of ``expected`` (keys for which
    ``optional`` is true may be absent); otherwise a one-line summary of the differences."""
    missing = [key for key in expected if key not in given and not optional(key)]
    unexpected = [key for key in given if key not in expected]
    misshaped = [f"{key} {list(given[key].shape)} vs {list(expected[key].shape)}" for key in expected
                 if key in given and tuple(getattr(given[key], "shape", ())) != tuple(expected[key].shape)]
    parts = []
    for what, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped (file vs network)", misshaped)):
        if keys:
            more = f", … ({len(keys) - SHOWN} more)" if len(keys) > SHOWN else ""
            parts.append(f"{len(keys)} {what}: {', '.join(keys[:SHOWN])}{more}")
    return "; ".join(parts) or None


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def conform_tensors(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor], *,
                    source: str | os.PathLike) -> dict[str, torch.Tensor]:
    """``given``'s tensors in the dtypes of ``expected``'s (same keys and shapes, see
    `describe_mismatch`); a one-line `ChainError` naming ``source`` and the first tensor that holds
    the wrong kind of number (integers, bools, complex where floats belong) or a value that is not
    finite once cast (NaN, ±inf; a float64 beyond float32's range becomes inf).

    Keys absent from ``given`` are left out (the caller allowed them as optional).
    """
    conformed = {}
    for key, reference in expected.items():
        tensor = given.get(key)
        if tensor is None:
            continue
        if not isinstance(tensor, torch.Tensor):
            raise ChainError(f"{source}: {key} is a {type(tensor).__name__}, not a tensor")
        want, have = reference.dtype, tensor.dtype
        if want.is_floating_point:
            if have not in FLOAT_DTYPES:
                raise ChainError(f"{source}: weight {key} holds {_dtype_name(have)} values, not floats "
                                 f"({', '.join(map(_dtype_name, FLOAT_DTYPES))}); the file was not written for "
                                 "this network, or is damaged")
            tensor = tensor.to(want)
            # A NaN or inf anywhere makes the sum one; a finite sum rules them out (0.04 s for SPADE-COCO's
            # 97M weights on 2 cores, against 1.5 s for isfinite(...).all()). A sum that overflows is checked in full.
            finite = torch.isfinite(tensor) if not bool(torch.isfinite(tensor.sum())) else None
            if finite is not None and not bool(finite.all()):
                bad = tensor[~finite]
                kinds = [name for name, count in (("NaN", int(bad.isnan().sum())), ("+inf", int((bad == math.inf).sum())),
                                                  ("-inf", int((bad == -math.inf).sum()))) if count]
                cast = f" once cast from {_dtype_name(have)}" if have != want else ""
                raise ChainError(f"{source}: weight {key} holds {'/'.join(kinds)}{cast} ({len(bad)} of "
                                 f"{tensor.numel()} values): these weights cannot paint; the checkpoint is damaged "
                                 "(or its training diverged): use another")
            if key.endswith("running_var") and tensor.numel() and float(tensor.min()) < 0:
                # BatchNorm divides by its square root: NaN everywhere after it
                raise ChainError(f"{source}: {key} holds a negative variance ({float(tensor.min()):g}); the "
                                 "checkpoint is damaged: use another")
        elif have != want:
            info = torch.iinfo(want) if want in INTEGER_DTYPES else None
            if info is None or have not in INTEGER_DTYPES or (
                    tensor.numel() and (int(tensor.min()) < info.min or int(tensor.max()) > info.max)):
                raise ChainError(f"{source}: {key} holds {_dtype_name(have)} values where the network keeps "
                                 f"{_dtype_name(want)}; the file was not written for this network, or is damaged")
            tensor = tensor.to(want)
        conformed[key] = tensor
    return conformed


def check_fit(factory: Callable[[], nn.Module], state_dict: Mapping[str, Any], *, source: str | os.PathLike,
              what: str, optional: Callable[[str], bool] = lambda key: False) -> dict[str, torch.Tensor]:
    """Raise a one-line `ChainError` unless ``factory()`` makes a network whose state_dict has
    exactly the keys and shapes of ``state_dict``, with numbers it can hold (`conform_tensors`).
    The network is built on the meta device, so a config asking for any size costs no memory;
    the caller's random state is left as it was. Returns the weights cast to the network's dtypes.

    Args:
        factory: builds the network from the user's config (called once, on the meta device).
        state_dict: the weights read from the user's file.
        source: the user's path, named in the message.
        what: the network, for the message (e.g. "VAE-GAN its config describes").
        optional: keys the weights may lack (e.g. BatchNorm's ``num_batches_tracked``).
    """
    rng = torch.random.get_rng_state()
    try:
        with torch.device("meta"):
            skeleton = factory()
    except CONFIG_ERRORS as error:
        raise ChainError(f"{source}: cannot build the {what} ({first_line(error)})") from None
    finally:
        torch.random.set_rng_state(rng)
    expected = skeleton.state_dict()
    problem = describe_mismatch(expected, state_dict, optional=optional)
    if problem:
        raise ChainError(f"{source}: the weights do not fit the {what} ({problem})")
    return conform_tensors(expected, state_dict, source=source)


def build_fitted(factory: Callable[[], Module], state_dict: Mapping[str, torch.Tensor], *,
                 source: str | os.PathLike, what: str) -> Module:
    """``factory()`` with ``state_dict`` loaded (strict), after `check_fit` has passed."""
    conformed = check_fit(factory, state_dict, source=source, what=what)
    model = factory()
    model.load_state_dict(conformed, strict=True)
    return model


def read_torch_file(path: str | os.PathLike) -> Any:
    """``torch.load`` with tensors and plain containers only; a one-line `ChainError` for a file
    that holds pickled code or objects, or is not a PyTorch file at all."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the error below says it all
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message advises weights_only=False, i.e. running whatever the file holds: not an option here.
        named = re.search(r"GLOBAL ([\w.]+)", str(error))
        if named:
            raise ChainError(f"{path} is not a plain state_dict of tensors (it holds {named.group(1)}); chain never "
                             "unpickles code: save model.state_dict() with torch.save, or as .safetensors") from None
        raise ChainError(f"{path} is not a PyTorch state_dict file, or holds more than tensors (chain never "
                         "unpickles code)") from None
    except IsADirectoryError:
        raise ChainError(f"{path} is a folder, not a PyTorch weights file") from None
    except FileNotFoundError:
        raise ChainError(f"weights file not found: {path}") from None
    except PermissionError:
        raise ChainError(f"cannot read {path}: permission denied") from None
    except Exception as error:  # torch raises RuntimeError, EOFError, KeyError… for a foreign or damaged file
        # torch's RuntimeErrors say what is wrong in their first sentence; the others (KeyError '101') do not.
        detail = first_line(error).split(". ")[0][:200] if isinstance(error, RuntimeError) else type(error).__name__
        raise ChainError(f"{path} is not a PyTorch state_dict file, or is damaged ({detail})") from None
