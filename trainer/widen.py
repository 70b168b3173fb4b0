"""Widening a trained U-Net: more channels per level, starting out as the trained model.

``train --init WEIGHTS --widths ...`` with wider levels than the initial model's (same depth)
grows it here, as Net2Net's zero-initialised variant does: every weight of the trained model is
copied to its place in the wider one; a new channel's own weights (its row of the layer that
makes it, its BatchNorm) keep the fresh model's initialisation, and every weight that reads a
new channel starts at zero, so nothing new reaches the output until training moves those zeros.

It is exact where a decoder layer sees its upsampled and skip inputs equally valid (everywhere
once the hole has closed at that level). Where they differ, on a hole's rim at the levels whose
upsampled input still has holes, the partial convolution's re-weighting counts channels
(``sum(1) / sum(M)``), and new channels change the count: the grown model starts close to the
trained one there, not equal (the unit tests measure both).
"""

from __future__ import annotations

import dataclasses

import torch

from engine.unet import PConvUNet, UNetConfig

__all__ = ["can_widen", "widen"]


def can_widen(config: UNetConfig, widths: tuple[int, ...]) -> str | None:
    """None when ``widths`` widen ``config``'s levels (same depth, none narrower); else why not."""
    if len(widths) != len(config.widths):
        return f"depth {len(widths)} differs from the initial model's {len(config.widths)}"
    narrower = [i for i, (a, b) in enumerate(zip(config.widths, widths)) if b < a]
    if narrower:
        i = narrower[0]
        return f"level {i} would be narrower ({widths[i]} < {config.widths[i]})"
    return None


def widen(model: PConvUNet, widths: tuple[int, ...], *, seed: int = 0) -> PConvUNet:
    """A new model with ``widths`` (each at least ``model``'s, same depth) holding ``model``'s
    weights, new channels read by nothing yet (see the module's docstring)."""
    old_cfg = model.config
    why = can_widen(old_cfg, tuple(widths))
    if why:
        raise ValueError(f"cannot widen {old_cfg.widths} to {tuple(widths)}: {why}")
    new_cfg = dataclasses.replace(old_cfg, widths=tuple(widths))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wide = PConvUNet(new_cfg)
    old_blocks = [*model.encoder, *model.decoder]
    new_blocks = [*wide.encoder, *wide.decoder]
    with torch.no_grad():
        for old, new in zip(old_blocks, new_blocks):
            _copy_conv(old, new)
            if old.bn is not None:
                _copy_bn(old.bn, new.bn)
        if model.refine is not None:
            wide.refine.load_state_dict(model.refine.state_dict())
    wide.train(model.training)
    return wide


def _input_blocks(block: torch.nn.Module) -> list[int]:
    """The sizes of the parts the block's input is the concatenation of."""
    if hasattr(block, "cin_up"):  # a decoder block: upsampled features, then the skip
        return [block.cin_up, block.cin_skip]
    return [block.pconv.in_channels]


def _copy_conv(old: torch.nn.Module, new: torch.nn.Module) -> None:
    ow, nw = old.pconv.weight, new.pconv.weight
    rows = ow.shape[0]
    nw[:rows].zero_()  # an old channel reads no new input channel
    src = dst = 0
    for o, n in zip(_input_blocks(old), _input_blocks(new)):
        nw[:rows, dst : dst + o] = ow[:, src : src + o]
        src, dst = src + o, dst + n
    if old.pconv.bias is not None:
        new.pconv.bias[:rows] = old.pconv.bias


def _copy_bn(old: torch.nn.BatchNorm2d, new: torch.nn.BatchNorm2d) -> None:
    n = old.num_features
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(new, name)[:n] = getattr(old, name)
    new.num_batches_tracked.copy_(old.num_batches_tracked)
