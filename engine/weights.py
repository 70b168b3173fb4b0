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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .atomic import atomic_path
from .texture_strength import TEXTURE, check_texture
from .unet import PConvUNet, UNetConfig

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "WeightsError",
    "WeightsInfo",
    "save_weights",
    "write_weight_file",
    "read_header",
    "floating_names",
    "read_tensors",
    "shapes_of",
    "load_weights",
    "read_weights_info",
    "resources_dir",
    "default_weights_path",
    "bundled_weights_path",
    "weights_to_load",
]

FORMAT_NAME = "retoucher.pconv-unet"
FORMAT_VERSION = "1"
DEFAULT_WEIGHTS_NAME = "default.safetensors"


class WeightsError(ValueError):
    """A weight file that cannot be used: missing, corrupt, not ours, or another architecture."""


@dataclass(frozen=True)
class WeightsInfo:
    path: Path | None
    name: str
    config: UNetConfig
    provenance: dict[str, Any] = field(default_factory=dict)
    dtype: str = "float32"
    texture: float = TEXTURE  # the model's own texture strength (see the module's docstring)


def resources_dir() -> Path:
    """The ``resources/`` folder: ``$RETOUCHER_RESOURCES``, else next to the packages
    (a source checkout or an editable install), else inside a PyInstaller bundle."""
    env = os.environ.get("RETOUCHER_RESOURCES")
    if env:
        return Path(env)
    import sys

    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def bundled_weights_path(name: str, resources: str | os.PathLike[str] | None = None) -> Path:
    """The bundled weight file ``name`` in ``resources`` (default: :func:`resources_dir`)."""
    return (Path(resources) if resources is not None else resources_dir()) / "weights" / name


def default_weights_path(resources: str | os.PathLike[str] | None = None) -> Path:
    """The bundled model in ``resources`` (default: :func:`resources_dir`)."""
    return bundled_weights_path(DEFAULT_WEIGHTS_NAME, resources)


def weights_to_load(
    weights: str | os.PathLike[str] | None, bundled: Path, what: str, train_command: str
) -> Path:
    """``weights`` as a path, or else the ``bundled`` file; when that is missing, a
    :class:`WeightsError` that says how to make one (``what``: "default model", ...)."""
    if weights is not None:
        return Path(weights)
    if not bundled.is_file():
        raise WeightsError(
            f"the {what} is missing: {bundled} does not exist. Train and export one with "
            f"'{train_command}' (see the README), or pass a weights file."
        )
    return bundled


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


def _not_safetensors(path: Path, exc: Exception) -> WeightsError:
    """The error for a file safetensors cannot parse; says so plainly when it is a pickle."""
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head == b"PK" or (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5):
        return WeightsError(
            f"{path} is a pickled PyTorch checkpoint, which Retoucher never loads because "
            "unpickling can run arbitrary code. Convert a training checkpoint with "
            "'retoucher-train export CKPT OUT.safetensors'."
        )
    return WeightsError(f"{path} is not a readable safetensors file ({exc})")


def read_header(
    path: str | os.PathLike[str], format_name: str, format_version: str, what: str
) -> dict[str, str]:
    """The metadata of a weight file of kind ``format_name`` (``what`` names it in errors);
    a :class:`WeightsError` for a missing, unreadable, foreign or newer file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weight file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise _not_safetensors(path, exc) from exc
    if meta.get("format") != format_name:
        raise WeightsError(
            f"{path} is a safetensors file but not a {what} "
            f"(metadata format {meta.get('format')!r}, expected {format_name!r})"
        )
    if meta.get("format_version") != format_version:
        raise WeightsError(
            f"{path} has weight-format version {meta.get('format_version')!r}; this Retoucher "
            f"reads version {format_version}"
        )
    return meta


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


def read_weights_info(path: str | os.PathLike[str]) -> WeightsInfo:
    """Read only the header: name, architecture and provenance."""
    path = Path(path)
    meta = read_header(path, FORMAT_NAME, FORMAT_VERSION, "Retoucher partial-convolution U-Net")
    try:
        config = UNetConfig.from_json(meta["config"])
        provenance = json.loads(meta.get("provenance") or "{}")
    except (KeyError, ValueError, TypeError) as exc:
        raise WeightsError(f"{path} has a broken architecture description ({exc})") from exc
    if not isinstance(provenance, dict):
        raise WeightsError(f"{path} has a broken provenance (a {type(provenance).__name__}, not an object)")
    try:
        texture = check_texture(float(meta["texture"])) if "texture" in meta else TEXTURE
    except ValueError as exc:
        raise WeightsError(f"{path} names a texture strength that cannot be used ({exc})") from exc
    return WeightsInfo(
        path=path,
        name=meta.get("name") or path.stem,
        config=config,
        provenance=provenance,
        dtype=meta.get("dtype", "float32"),
        texture=texture,
    )


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
