"""Weight files' headers, without torch: what a file is (its format, name, architecture,
provenance and texture strength) and where the bundled ones are. The app reads these before it
loads torch (its status bar names the model), the command line checks a path with them; loading
and writing the tensors is :mod:`engine.weights`, which re-exports every name here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from .texture_strength import TEXTURE, check_texture
from .unet_config import UNetConfig

__all__ = [
    "DAMAGE_FORMAT_NAME",
    "DAMAGE_FORMAT_VERSION",
    "DAMAGE_WEIGHTS_NAME",
    "DEFAULT_THRESHOLD",
    "DEFAULT_WEIGHTS_NAME",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "WeightsError",
    "WeightsInfo",
    "bundled_weights_path",
    "calibrated_threshold",
    "damage_weights_path",
    "default_damage_weights_path",
    "default_weights_path",
    "read_described",
    "read_damage_header",
    "read_header",
    "read_weights_info",
    "resources_dir",
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
    """The ``resources/`` folder: ``$RETOUCHER_RESOURCES``, else inside a PyInstaller bundle,
    else next to the packages (a source checkout, an editable install, or an installed wheel,
    which carries it as package data)."""
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


DAMAGE_WEIGHTS_NAME = "damage.safetensors"
DAMAGE_FORMAT_NAME = "retoucher.damage-net"
DAMAGE_FORMAT_VERSION = "1"
DEFAULT_THRESHOLD = 0.5
"""A damage detector's threshold when its file names none."""


def calibrated_threshold(provenance: dict[str, Any]) -> float:
    """The damage threshold a detector's file was calibrated for (``provenance["threshold"]``),
    else :data:`DEFAULT_THRESHOLD`."""
    t = provenance.get("threshold", DEFAULT_THRESHOLD)
    return float(t) if isinstance(t, int | float) and 0.0 < t < 1.0 else DEFAULT_THRESHOLD


def read_damage_header(path: str | os.PathLike[str]) -> tuple[str, float, dict[str, Any]]:
    """A damage detector file's name, calibrated threshold and provenance, from its header alone
    (no torch: for the app's window); a :class:`WeightsError` for a missing or foreign file."""
    path = Path(path)
    meta = read_header(path, DAMAGE_FORMAT_NAME, DAMAGE_FORMAT_VERSION, "Retoucher damage detector")
    _, provenance = read_described(path, meta, lambda _config: None)  # its architecture: torch's
    return meta.get("name") or path.stem, calibrated_threshold(provenance), provenance


def default_damage_weights_path(resources: str | os.PathLike[str] | None = None) -> Path:
    """The bundled damage detector in ``resources`` (default: :func:`resources_dir`)."""
    return bundled_weights_path(DAMAGE_WEIGHTS_NAME, resources)


def weights_to_load(
    weights: str | os.PathLike[str] | None, bundled: Path, what: str, train_command: str
) -> Path:
    """``weights`` as a path, or else the ``bundled`` file; when that is missing, a
    :class:`WeightsError` that says how to make one (``what``: "default model", ...)."""
    if weights is not None:
        return Path(weights).expanduser()  # "~/models/mine.safetensors" typed in the app too
    if not bundled.is_file():
        raise WeightsError(
            f"the {what} is missing: {bundled} does not exist. Train and export one with "
            f"'{train_command}' (see the README), or pass a weights file."
        )
    return bundled


def model_weights_path(weights: str | os.PathLike[str] | None) -> Path:
    """The weight file an Inpainter made with ``weights`` loads: that path, or the bundled
    default model (a :class:`WeightsError` when it is missing)."""
    return weights_to_load(weights, default_weights_path(), "default model", "retoucher-train")


def damage_weights_path(weights: str | os.PathLike[str] | None) -> Path:
    """The weight file a DamageDetector made with ``weights`` loads: that path, or the bundled
    detector (a :class:`WeightsError` when it is missing)."""
    return weights_to_load(
        weights, default_damage_weights_path(), "bundled damage detector", "retoucher-train damage"
    )


def _not_safetensors(path: Path, exc: Exception) -> WeightsError:
    """The error for a file safetensors cannot parse; says so plainly when it is a pickle."""
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head == b"PK" or (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5):
        return WeightsError(
            f"{path} is a pickled PyTorch checkpoint, which Retoucher never loads because "
            "unpickling can run arbitrary code. Convert an inpainting training checkpoint with "
            "'retoucher-train export CKPT OUT.safetensors'; a damage detector's run writes its "
            "damage.safetensors itself when it ends (run its 'retoucher-train damage train' command "
            "again to finish it)."
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
        with safe_open(str(path), framework="np") as f:  # the header only: no torch
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


def read_described(
    path: Path, meta: dict[str, str], from_json: Callable[[str], Any]
) -> tuple[Any, dict[str, Any]]:
    """The architecture (``from_json`` of the header's ``config``) and the provenance object of
    a weight file whose header :func:`read_header` returned; a :class:`WeightsError` naming
    ``path`` for either broken."""
    try:
        config = from_json(meta["config"])
        provenance = json.loads(meta.get("provenance") or "{}")
    except (KeyError, ValueError, TypeError) as exc:
        raise WeightsError(f"{path} has a broken architecture description ({exc})") from exc
    if not isinstance(provenance, dict):
        raise WeightsError(f"{path} has a broken provenance (a {type(provenance).__name__}, not an object)")
    return config, provenance


def read_weights_info(path: str | os.PathLike[str]) -> WeightsInfo:
    """Read only the header: name, architecture and provenance."""
    path = Path(path)
    meta = read_header(path, FORMAT_NAME, FORMAT_VERSION, "Retoucher partial-convolution U-Net")
    config, provenance = read_described(path, meta, UNetConfig.from_json)
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
