"""Exponential moving average of a model's weights (and BatchNorm statistics)."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["ModelEMA"]


class ModelEMA:
    """``ema = d * ema + (1 - d) * model`` after every optimiser step, with the usual warm-up
    ``d = min(decay, (1 + n) / (10 + n))`` so early averages are not dominated by the random
    initialisation. Integer buffers (BatchNorm's batch counter) are copied. Checkpoints keep
    :attr:`model`'s plain state dict (``ema_model``) and ``{decay, updates}`` (``ema``).

    Why not ``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn``: the stock
    function has no warm-up and averages integer buffers (``num_batches_tracked``) instead of
    copying them, so the same weights need our own ``multi_avg_fn`` anyway; AveragedModel's
    first update copies the model instead of averaging it with the initial weights (one
    priming call and ``n_averaged = updates + 1`` at save and resume to make up for it); its
    state dict is prefixed ``module.`` with an ``n_averaged`` buffer (translated to keep old
    checkpoints loading); and the warm-up reads ``n_averaged``, a device tensor, which costs a
    GPU sync per dtype group every step. It can be made bit-identical (checked), but only with
    more code than this class, so this class stays.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        current = model.state_dict()
        for name, avg in self.model.state_dict().items():
            new = current[name].detach()
            if avg.is_floating_point():
                avg.lerp_(new.to(avg.dtype), 1.0 - d)
            else:
                avg.copy_(new)
