"""``retoucher-train export``: a training checkpoint -> the engine's weight file.

The file (safetensors, written by :func:`engine.weights.save_weights`) carries the architecture
and a provenance record: the data it was trained on (source, classes, image counts), the steps
and recipe of every training phase, the last logged losses, the last validation metrics and,
with ``--evaluation``, the test-split table written by ``retoucher-train evaluate``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from engine.weights import save_weights

from .checkpoint import load_checkpoint, model_from_checkpoint

__all__ = ["export", "provenance_from_checkpoint"]


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
        "steps": int(sum(int(p.get("steps", 0)) for p in lineage)) if lineage else int(ckpt["step"]),
        "recipe": lineage,
        "weights": "EMA" if uses_ema else "raw",
        "losses": ckpt.get("losses") or {},
        "metrics": {"validation": ckpt.get("metrics") or {}},
        "vgg": ckpt.get("vgg"),
        "train_seconds": round(float(ckpt.get("elapsed_s", 0.0)), 1),
    }


def export(
    checkpoint: str | Path,
    out: str | Path,
    *,
    half: bool = False,
    name: str | None = None,
    ema: bool = True,
    evaluation: str | Path | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Write ``out`` from ``checkpoint`` (a .pt file or a run folder); returns the path and the
    provenance written."""
    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt, ema=ema)
    provenance = provenance_from_checkpoint(ckpt, ema=ema)
    if evaluation is not None:
        table = json.loads(Path(evaluation).read_text(encoding="utf-8"))
        if table.get("split", "test") != "test":
            raise ValueError(
                f"{evaluation} is an evaluation of the {table['split']} split; the weight file "
                "carries the test split's (retoucher-train evaluate without --split)"
            )
        provenance["metrics"]["test"] = table
    path = save_weights(out, model, provenance, name=name, half=half)
    return path, provenance
