"""Weight files: safetensors with the architecture and provenance in the metadata.

A file alone rebuilds the model: ``metadata["config"]`` is the :class:`UNetConfig` as JSON,
``metadata["provenance"]`` a JSON object (data, steps, recipe, metrics...) and, when the file names
one, ``metadata["texture"]`` the model's own texture strength (:mod:`engine.texture_strength`: the
strength its published evaluation was run at, which the Inpainter, the app and the batch use
unless the user sets another; :data:`~engine.texture_strength.TEXTURE` when absent). safetensors never
executes code, so a file from a stranger can at worst fail to load. Pickled PyTorch checkpoints
are refused with a message that says how to convert them (``retoucher-train export``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .atomic import atomic_path
from .texture_strength import check_texture
from .unet import PConvUNet
from .weight_header import (
    DEFAULT_WEIGHTS_NAME,
    FORMAT_NAME,
    FORMAT_VERSION,
    WeightsError,
    WeightsInfo,
    bundled_weights_path,
    default_weights_path,
    model_weights_path,
    read_described,
    read_header,
    read_weights_info,
    resources_dir,
    weights_to_load,
)

__all__ = [
    "DEFAULT_WEIGHTS_NAME",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "WeightsError",
    "WeightsInfo",
    "save_weights",
    "write_weight_file",
    "read_described",
    "read_header",
    "floating_names",
    "read_tensors",
    "shapes_of",
    "load_weights",
    "read_weights_info",
    "resources_dir",
    "default_weights_path",
    "model_weights_path",
    "bundled_weights_path",
    "weights_to_load",
]


def save_weights(
    path: str | os.PathLike[str],
    model: PConvUNet,
    provenance: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    half: bool = False,
    texture: float | None = None,
) -> Path:
    """Write ``model`` (its parameters and BatchNorm statistics) atomically to ``path``;
    ``texture``: the model's own texture strength (None: the file names none)."""
    extra = {} if texture is None else {"texture": repr(check_texture(texture))}
    return write_weight_file(
        path,
        model.state_dict(),
        FORMAT_NAME,
        FORMAT_VERSION,
        model.config.to_json(),
        provenance,
        name=name,
        half=half,
        extra=extra,
    )


def write_weight_file(
    path: str | os.PathLike[str],
    state: dict[str, torch.Tensor],
    format_name: str,
    format_version: str,
    config_json: str,
    provenance: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    half: bool = False,
    extra: dict[str, str] | None = None,
) -> Path:
    """The one writer of weight files (every network Retoucher ships): the tensors of ``state``
    (floats as fp16 when ``half``) with the format, architecture and provenance as metadata
    (and the kind's own ``extra`` entries), written atomically."""
    path = Path(path)
    dtype = torch.float16 if half else torch.float32
    tensors = {}
    for key, t in state.items():
        t = t.detach().to("cpu")
        if t.is_floating_point():
            cast = t.to(dtype)
            if half and not bool(torch.isfinite(cast).all()) and bool(torch.isfinite(t).all()):
                raise WeightsError(
                    f"{key} does not fit fp16 (its largest magnitude is {float(t.abs().max()):.4g}, "
                    "fp16's 65504): write it in fp32"
                )
            t = cast
        tensors[key] = t.contiguous()
    metadata = {
        "format": format_name,
        "format_version": format_version,
        "name": name or path.stem,
        "config": config_json,
        "provenance": json.dumps(provenance or {}, sort_keys=True, default=str),
        "dtype": str(dtype).removeprefix("torch."),
        **(extra or {}),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_tensors(
    path: Path, expected: dict[str, tuple[int, ...]], floating: Collection[str] = ()
) -> dict[str, torch.Tensor]:
    """The tensors of ``path`` as float32 (integer buffers as stored), after checking that their
    names and shapes are exactly ``expected``, that those named in ``floating`` are stored as
    real floating point (:func:`floating_names`: an integer, boolean or complex tensor there would
    be cast into the weights without a word) and that they hold no NaN or infinity. Shapes are
    compared from the header first: nothing is read from a file that does not match."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            missing = sorted(set(expected) - set(shapes))
            unexpected = sorted(set(shapes) - set(expected))
            wrong_shape = sorted(k for k in set(expected) & set(shapes) if expected[k] != shapes[k])
            if missing or unexpected or wrong_shape:
                detail = "; ".join(
                    f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                    for label, keys in (
                        ("missing", missing),
                        ("unexpected", unexpected),
                        ("wrong shape", wrong_shape),
                    )
                    if keys
                )
                raise WeightsError(
                    f"{path} does not match the architecture its metadata describes ({detail})"
                )
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        if isinstance(exc, WeightsError):
            raise
        raise WeightsError(f"{path} is corrupt ({exc})") from exc
    wrong_type = sorted(k for k in floating if k in tensors and not tensors[k].is_floating_point())
    if wrong_type:
        k = wrong_type[0]
        raise WeightsError(f"{path}: tensor {k} is stored as {tensors[k].dtype}, not as floating point")
    for k, t in tensors.items():
        if t.is_floating_point():
            t = t.float()  # float8, bf16, fp16, fp64 alike: isfinite does not take them all
            if not torch.isfinite(t).all():
                raise WeightsError(f"{path} is corrupt: tensor {k} holds NaN or infinity")
            tensors[k] = t
    return tensors


def shapes_of(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """``state_dict`` names and shapes of ``module`` (build it on the meta device: no storage)."""
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def floating_names(module: torch.nn.Module) -> set[str]:
    """``state_dict`` names of ``module``'s floating-point tensors (weights, not counters)."""
    return {k for k, v in module.state_dict().items() if v.is_floating_point()}


def load_weights(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[PConvUNet, WeightsInfo]:
    """Rebuild the model described by the file and load its tensors (float32, eval mode)."""
    info = read_weights_info(path)
    with torch.device("meta"):
        skeleton = PConvUNet(info.config)
    assert info.path is not None
    tensors = read_tensors(info.path, shapes_of(skeleton), floating_names(skeleton))
    model = PConvUNet(info.config)
    model.load_state_dict(tensors, strict=True)
    model.eval()
    return model.to(device), info
