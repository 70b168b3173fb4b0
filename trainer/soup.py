"""``retoucher-train soup``: one weight file whose tensors are a weighted average of several models'.

Models fine-tuned from one parent lie in one basin of the loss, and the average of their weights
(a "model soup", Wortsman et al. 2022) is often better than each of them, at no cost at inference:
the soup is one network of the same shape. Interpolating between the parent and a fine-tune
(WiSE-FT, Wortsman et al. 2022) keeps part of what the fine-tune gained on its own data while
giving back less of what the parent did well elsewhere. Which weights are worth shipping is for
``retoucher-train evaluate --compare`` to say, on the val split.

Every model must have the same architecture (the weight file's config). Floating-point tensors
are averaged in float64. BatchNorm statistics are averaged too, which is sound when the runs kept
them frozen (``--freeze-bn all``: they are then the parent's in every model) or close; integer
buffers (BatchNorm's step counter) are taken from the most heavily weighted model. The file's
provenance lists each ingredient's weight and provenance, and its recipe is the ingredients'
common training phases followed by one soup entry holding each one's own later phases, so that a
run started from the soup (``--init``) and its export count the steps behind it. A texture
strength is only named when given (a soup has not been measured at any).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from engine.texture_strength import check_texture
from engine.unet import PConvUNet
from engine.weights import save_weights

from .checkpoint import check_weight_file_name
from .export import load_source, recipe_steps

__all__ = ["soup_weights", "average_state", "soup_recipe", "soup"]


def soup_weights(count: int, weights: Sequence[float] | None) -> list[float]:
    """The mixing weights of ``count`` models: equal when None, else ``weights`` (one per model,
    none negative, not all zero) scaled to sum to 1."""
    if count < 2:
        raise ValueError(f"a soup needs at least two models, got {count}")
    if weights is None:
        return [1.0 / count] * count
    weights = [float(w) for w in weights]
    if len(weights) != count:
        raise ValueError(f"{len(weights)} weights for {count} models: give one weight per model")
    if not all(math.isfinite(w) for w in weights):
        raise ValueError(f"weights must be finite numbers, got {weights}")
    if any(w < 0.0 for w in weights):
        raise ValueError(f"weights must be at least 0, got {weights}")
    top = max(weights)
    if top == 0.0:
        raise ValueError("weights must not all be 0")
    scaled = [w / top for w in weights]  # no overflow in the sum, however large the weights
    total = sum(scaled)
    return [w / total for w in scaled]


def average_state(
    states: Sequence[dict[str, torch.Tensor]], weights: Sequence[float]
) -> dict[str, torch.Tensor]:
    """The weighted average of ``states`` (same keys and shapes), each float tensor computed in
    float64 and returned in the first state's dtype; integer tensors are those of the most heavily
    weighted state (the first of equals). A :class:`ValueError` when the average is not finite."""
    first = states[0]
    heaviest = states[max(range(len(states)), key=lambda i: (weights[i], -i))]
    for i, state in enumerate(states[1:], 1):
        if state.keys() != first.keys():
            diff = sorted(set(state) ^ set(first))
            raise ValueError(f"model {i + 1} has other tensors than model 1 ({', '.join(diff[:3])} ...)")
        for key, t in state.items():
            if t.shape != first[key].shape:
                raise ValueError(
                    f"model {i + 1}'s {key} is {tuple(t.shape)}, model 1's {tuple(first[key].shape)}"
                )
    out = {}
    for key, t0 in first.items():
        if not t0.is_floating_point():
            out[key] = heaviest[key].detach().to("cpu").clone()
            continue
        acc = torch.zeros(t0.shape, dtype=torch.float64)
        for state, w in zip(states, weights):
            acc += w * state[key].detach().to("cpu", torch.float64)
        if not torch.isfinite(acc).all():
            raise ValueError(f"the average of {key} holds NaN or infinity: a model is corrupt")
        out[key] = acc.to(t0.dtype)
    return out


def soup_recipe(
    recipes: Sequence[list[dict[str, Any]]], sources: Sequence[str | Path], weights: Sequence[float]
) -> list[dict[str, Any]]:
    """The training recipe of a soup: the phases every ingredient shares (its parent's), then one
    entry with each ingredient's own later phases; its ``steps`` are the longest of those, so the
    recipe's steps add up to the longest training behind any ingredient."""
    common = 0
    while all(len(r) > common and r[common] == recipes[0][common] for r in recipes):
        common += 1
    own = [list(r[common:]) for r in recipes]
    entry = {
        "phase": "soup",
        "steps": max(recipe_steps(r) for r in own),
        "soup": [{"source": str(src), "weight": w, "recipe": r} for src, w, r in zip(sources, weights, own)],
    }
    return [*recipes[0][:common], entry]


def soup(
    sources: Sequence[str | Path],
    out: str | Path,
    *,
    weights: Sequence[float] | None = None,
    half: bool = False,
    name: str | None = None,
    texture: float | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Write ``out``: the weighted average of the models in ``sources`` (checkpoints, their EMA
    weights, or weight files); returns the path and the provenance written."""
    check_weight_file_name(out)
    mix = soup_weights(len(sources), weights)
    if texture is not None:
        texture = check_texture(texture)
    loaded = [load_source(s) for s in sources]
    config = loaded[0].model.config
    for path, source in zip(sources[1:], loaded[1:]):
        if source.model.config != config:
            raise ValueError(
                f"{path} is another architecture than {sources[0]} "
                f"({source.model.config.to_json()} against {config.to_json()}); a soup needs one"
            )
    model = PConvUNet(config)
    model.load_state_dict(average_state([s.model.state_dict() for s in loaded], mix))
    model.eval()
    recipe = soup_recipe([s.provenance.get("recipe") or [] for s in loaded], sources, mix)
    datas = [s.provenance.get("data") for s in loaded]
    provenance = {
        "trainer": "retoucher-train",
        "exported": time.strftime("%Y-%m-%d %H:%M:%S"),
        "data": datas[0] if all(d == datas[0] for d in datas) else {},
        "steps": recipe_steps(recipe),
        "recipe": recipe,
        "weights": "soup",
        "soup": [
            {"source": str(path), "weight": w, "provenance": s.provenance}
            for path, w, s in zip(sources, mix, loaded)
        ],
        "metrics": {},
    }
    half = half or all(s.half for s in loaded)
    path = save_weights(out, model, provenance, name=name, half=half, texture=texture)
    return path, provenance
