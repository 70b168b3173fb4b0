"""``retoucher-train export``: a training checkpoint -> the engine's weight file.

The file (safetensors, written by :func:`engine.weights.save_weights`) carries the architecture
and a provenance record: the data it was trained on (source, classes, image counts), the steps
and recipe of every training phase, the last logged losses, the last validation metrics and,
with ``--evaluation``, the test-split table written by ``retoucher-train evaluate``.

The source may also be a weight file: its tensors and provenance are kept as they are (fp16 stays
fp16 unless ``--half`` is given to a float32 file) and ``--evaluation`` replaces its test table.
That re-stamps a shipped model whose checkpoint is gone after the test split or the ``Inpainter``
changed, so that the file and the published report stay one measurement.

``texture`` is the model's own texture strength (:mod:`engine.texture_strength`), which the app and
the batch use unless the user sets another: a weight file keeps its own unless it is given; a
checkpoint's file names none unless it is given (the engine then uses 0). With ``--evaluation`` the
evaluation must have run the model at that strength, so that what the app does is what was
measured.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.mirror_pass import MIRROR
from engine.texture_strength import TEXTURE, check_texture
from engine.unet import PConvUNet
from engine.weights import load_weights, read_weights_info, save_weights

from .checkpoint import check_weight_file_name, is_weight_file, load_checkpoint, model_from_checkpoint

__all__ = [
    "Source",
    "export",
    "load_source",
    "provenance_from_checkpoint",
    "evaluation_table",
    "recipe_steps",
]


def recipe_steps(recipe: list[dict[str, Any]]) -> int:
    """The optimiser steps of a training recipe (a lineage of phases): the sum of its phases'."""
    return sum(int(p.get("steps", 0)) for p in recipe)


def provenance_from_checkpoint(ckpt: dict[str, Any], *, ema: bool) -> dict[str, Any]:
    lineage = list(ckpt.get("lineage", []))
    data = dict(ckpt.get("data_info") or {})
    species = data.pop("species", [])
    uses_ema = ema and ckpt.get("ema_model") is not None
    return {
        "trainer": "retoucher-train",
        "exported": time.strftime("%Y-%m-%d %H:%M:%S"),
        "checkpoint": str(ckpt.get("path", "")),
        "data": data,
        "classes": species,
        "steps": recipe_steps(lineage) if lineage else int(ckpt["step"]),
        "recipe": lineage,
        "weights": "EMA" if uses_ema else "raw",
        "losses": ckpt.get("losses") or {},
        # validation ran on the EMA model where there is one: not the raw weights' figures
        "metrics": {"validation": ckpt.get("metrics") or {}}
        if uses_ema or ckpt.get("ema_model") is None
        else {},
        "vgg": ckpt.get("vgg"),
        "train_seconds": round(float(ckpt.get("elapsed_s", 0.0)), 1),
    }


@dataclass(frozen=True)
class Source:
    """A model read from a checkpoint or a weight file, with what its weight file would carry."""

    model: PConvUNet
    provenance: dict[str, Any]
    half: bool  # a weight file stored in fp16
    name: str | None  # a weight file's own name
    texture: float | None  # a weight file's own texture strength (None: it names none)
    has_ema: bool = False  # a checkpoint with EMA weights (what evaluate scores of it)


def load_source(checkpoint: str | Path, *, ema: bool = True) -> Source:
    """The model of ``checkpoint`` (a .pt file, a run folder or a .safetensors weight file) and
    its provenance: a weight file's as it is, a checkpoint's from its training record."""
    if is_weight_file(checkpoint):
        if not ema:
            raise ValueError("--no-ema applies to checkpoints; a weight file holds one set of weights")
        info = read_weights_info(checkpoint)
        model, _ = load_weights(checkpoint)
        provenance = {**info.provenance, "metrics": dict(info.provenance.get("metrics") or {})}
        texture = info.texture if info.texture != TEXTURE else None
        return Source(model, provenance, info.dtype == "float16", info.name, texture)
    ckpt = load_checkpoint(checkpoint)
    return Source(
        model_from_checkpoint(ckpt, ema=ema),
        provenance_from_checkpoint(ckpt, ema=ema),
        False,
        None,
        None,
        has_ema=ckpt.get("ema_model") is not None,
    )


def weights_fingerprint(model: torch.nn.Module) -> str:
    """Which weights a table measured: a hash of ``model``'s state (names, shapes, values) with
    its floating tensors at half precision, so that a checkpoint, its full-precision export and
    its ``--half`` export (the app's file) all have the fingerprint of the one network they fill
    with alike."""
    h = hashlib.blake2b(digest_size=16)
    for key, t in sorted(model.state_dict().items()):
        t = t.detach().cpu()
        t = t.to(torch.float16) if t.is_floating_point() else t.to(torch.int64)
        h.update(f"{key}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def evaluation_table(
    evaluation: str | Path, texture: float | None, fingerprint: str | None = None
) -> dict[str, Any]:
    """The test split's table written by ``evaluate`` (its .json), checked to have run the model
    as the app fills (its mirrored pass) at the texture strength the file will name (``texture``;
    None: the engine's default), and these weights (``fingerprint``, see :func:`check_table`)."""
    table = json.loads(Path(evaluation).read_text(encoding="utf-8"))
    check_table(table, texture, str(evaluation), fingerprint)
    return table


def check_table(table: object, texture: float | None, where: str, fingerprint: str | None = None) -> None:
    """ValueError unless ``table`` is a test table of ``evaluate`` measured as a weight file naming
    ``texture`` fills (``where`` names it in the message), of the weights whose
    :func:`weights_fingerprint` is ``fingerprint`` (a table from before evaluate wrote one, with
    no ``weights`` entry, cannot be checked so)."""
    if not isinstance(table, dict):
        raise ValueError(f"{where} is not an evaluation table (the .json retoucher-train evaluate writes)")
    lacking = [key for key in ("split", "rows") if key not in table]
    if lacking:
        raise ValueError(
            f"{where} is not an evaluation table (the .json retoucher-train evaluate writes): "
            f"it has no {', '.join(lacking)}"
        )
    if bool(table.get("mirror", False)) != MIRROR:  # tables from before the mirrored pass name none
        raise ValueError(
            f"{where} filled {'with' if table.get('mirror') else 'without'} the mirrored pass, the app "
            f"{'with' if MIRROR else 'without'} it: the published figures must be measured as the app fills"
        )
    measured_weights = table.get("weights")
    if fingerprint is not None and measured_weights is not None and measured_weights != fingerprint:
        raise ValueError(
            f"{where} measured other weights (fingerprint {measured_weights}) than these ({fingerprint}; "
            f"it is the table of {table.get('model', 'another model')!r}): evaluate this model and stamp its own table"
        )
    if table["split"] != "test":
        raise ValueError(
            f"{where} is an evaluation of the {table['split']} split; the weight file "
            "carries the test split's (retoucher-train evaluate without --split)"
        )
    try:
        measured = check_texture(table.get("texture_strength", TEXTURE))
    except ValueError as exc:
        raise ValueError(f"{where}: its texture_strength is unusable ({exc})") from exc
    named = TEXTURE if texture is None else texture
    if measured != named:
        raise ValueError(
            f"{where} ran the model at texture strength {measured:g} but the file would name "
            f"{named:g}: give --texture {measured:g}, or --evaluation measured at {named:g} (the app "
            "fills at the file's strength, so the published figures must be measured at it)"
        )


def export(
    checkpoint: str | Path,
    out: str | Path,
    *,
    half: bool = False,
    name: str | None = None,
    ema: bool = True,
    evaluation: str | Path | None = None,
    texture: float | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Write ``out`` from ``checkpoint`` (a .pt file, a run folder or a .safetensors weight
    file); returns the path and the provenance written."""
    check_weight_file_name(out)
    if texture is not None:
        texture = check_texture(texture)
    source = load_source(checkpoint, ema=ema)
    if evaluation is not None and source.has_ema and not ema:
        raise ValueError(
            "--evaluation with --no-ema: evaluate scores a checkpoint's EMA weights, so its table is not "
            "the raw weights'; export the EMA weights, or evaluate the raw export's file"
        )
    provenance = source.provenance
    half = half or source.half
    name = name or source.name
    if texture is None:
        texture = source.texture
    fingerprint = weights_fingerprint(source.model)
    if evaluation is not None:
        provenance["metrics"]["test"] = evaluation_table(evaluation, texture, fingerprint)
    elif "test" in provenance["metrics"]:  # a weight file's own table must stay true of it
        check_table(provenance["metrics"]["test"], texture, f"{checkpoint}'s test table", fingerprint)
    path = save_weights(out, source.model, provenance, name=name, half=half, texture=texture)
    return path, provenance
