"""``retoucher-train soup``: one weight file whose tensors are a weighted average of several models'.

Models fine-tuned from one parent lie in one basin of the loss, and the average of their weights
(a "model soup", Wortsman et al. 2022) is often better than each of them, at no cost at inference:
the soup is one network of the same shape. Interpolating between the parent and a fine-tune
(WiSE-FT, Wortsman et al. 2022) keeps part of what the fine-tune gained on its own data while
giving back less of what the parent did well elsewhere. Which weights are worth shipping is for
``retoucher-train evaluate --compare`` to say, on the val split.

Every model must have the same architecture (the weight file's config). Floating-point tensors,
BatchNorm statistics included, are averaged in float64; integer buffers (BatchNorm's step counter)
must agree or the first model's are kept. The file's provenance lists each ingredient's weight and
provenance; a texture strength is only named when given (a soup has not been measured at any).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from engine.texture_strength import check_texture
from engine.unet import PConvUNet
from engine.weights import save_weights

from .export import load_source

__all__ = ["soup_weights", "average_state", "soup"]


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
    if any(not (w >= 0.0) or w == float("inf") for w in weights) or sum(weights) <= 0.0:
        raise ValueError(f"weights must be finite, at least 0 and not all 0, got {weights}")
    total = sum(weights)
    return [w / total for w in weights]


def average_state(
    states: Sequence[dict[str, torch.Tensor]], weights: Sequence[float]
) -> dict[str, torch.Tensor]:
    """The weighted average of ``states`` (same keys and shapes), each float tensor computed in
    float64 and returned in the first state's dtype; integer tensors are the first state's."""
    first = states[0]
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
            out[key] = t0.clone()
            continue
        acc = torch.zeros(t0.shape, dtype=torch.float64)
        for state, w in zip(states, weights):
            acc += w * state[key].detach().to("cpu", torch.float64)
        out[key] = acc.to(t0.dtype)
    return out


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
    provenance = {
        "trainer": "retoucher-train",
        "exported": time.strftime("%Y-%m-%d %H:%M:%S"),
        "soup": [
            {"source": str(path), "weight": w, "provenance": s.provenance}
            for path, w, s in zip(sources, mix, loaded)
        ],
        "metrics": {},
    }
    half = half or all(s.half for s in loaded)
    path = save_weights(out, model, provenance, name=name, half=half, texture=texture)
    return path, provenance
