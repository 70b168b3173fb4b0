"""One optimisation step and what it is made of: the loss, the optimiser with its parameter groups,
the learning-rate schedule and the autocast dtype.

Shared by the training loop (:mod:`trainer.loop`) and the speed benchmark
(``benchmarks/train.py``), so that the benchmark measures the step that ``retoucher-train train``
runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import TYPE_CHECKING, Any

import torch

from engine.convert import batch_to_network
from engine.unet import PConvUNet

from .config import TrainConfig, TrainError
from .losses import InpaintingLoss, LossWeights, composite

if TYPE_CHECKING:
    from .adversarial import Adversary
    from .vgg_calibration import VGGCalibration

__all__ = [
    "TrainStep",
    "amp_dtype",
    "cuda_speed_switches",
    "build_loss",
    "build_optimizer",
    "lr_factor",
    "param_groups",
]


def cuda_speed_switches() -> None:
    """What a training run sets for speed on CUDA (and the training benchmark with it): cuDNN's
    algorithm search for the convolutions' fixed shapes, TF32 matmuls and convolutions."""
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


AMP_NAMES = {torch.bfloat16: "bf16", torch.float16: "fp16", None: "off"}


def amp_dtype(config: TrainConfig, device: torch.device, resumed: str | None = None) -> torch.dtype | None:
    """The autocast dtype of ``--amp`` on ``device`` (``auto``: bf16 on a GPU that runs it
    natively, Ampere on; fp16, with the loss scaler, on an older one, where cuDNN has no bf16
    convolutions; none on the CPU). ``resumed``: what ``auto`` was in the run resumed (a
    checkpoint's ``amp``, :data:`AMP_NAMES`), which it stays: a run does not change its precision
    (and its loss scaler) because it continues on another GPU."""
    amp = config.amp
    if amp == "auto" and resumed is not None:
        amp = resumed
    elif amp == "auto":
        from engine.inpainter import bf16_supported

        amp = "off" if device.type != "cuda" else "bf16" if bf16_supported(device) else "fp16"
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[amp]


def param_groups(model: PConvUNet, config: TrainConfig) -> list[dict[str, Any]]:
    """Optimiser parameter groups: the U-Net at ``--lr``, the refinement head (if any) at
    ``--refine-lr-scale`` times that. The head starts at zero and its blend weights must travel
    to about 1, which Adam (steps of about the learning rate) would take ~1/lr steps to do."""
    head = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("refine.")]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("refine.")]
    groups: list[dict[str, Any]] = [{"params": rest, "lr": config.learning_rate}]
    if head:
        scale = config.refine_lr_scale
        # AdamW's decay is lr x weight_decay: divide it back so the head decays like the rest.
        groups.append(
            {
                "params": head,
                "lr": config.learning_rate * scale,
                "weight_decay": config.weight_decay / scale,
            }
        )
    return groups


def lr_factor(config: TrainConfig, step: int) -> float:
    """The learning rate of ``step`` as a fraction of ``--lr``: linear warm-up, then constant or
    cosine down to ``--min-lr-ratio``."""
    warm = config.warmup_steps
    if warm and step < warm:
        return (step + 1) / warm
    if config.schedule == "cosine":
        progress = min(1.0, (step - warm) / max(1, config.steps - warm))
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return 1.0


def build_optimizer(
    model: PConvUNet, config: TrainConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """Adam (AdamW with ``--weight-decay``) over :func:`param_groups`, and the schedule of
    :func:`lr_factor`."""
    params = param_groups(model, config)
    if config.weight_decay:
        optimizer: torch.optim.Optimizer = torch.optim.AdamW(
            params, lr=config.learning_rate, weight_decay=config.weight_decay
        )
    else:
        optimizer = torch.optim.Adam(params, lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(config, s))
    return optimizer, scheduler


def build_loss(
    config: TrainConfig, device: torch.device, *, calibration: VGGCalibration | None = None
) -> tuple[InpaintingLoss, str]:
    """The loss and a description of the VGG it uses (or why it uses none).

    The VGG's layer scales come from ``calibration`` (a resumed run's own), else from
    ``--vgg-calibration`` (:mod:`trainer.vgg_calibration`, on photos of ``config.data``); the
    loss keeps what it used as ``loss.vgg_calibration``."""
    weights = LossWeights(
        valid=config.valid_weight,
        hole_mse=config.hole_mse_weight,
        perceptual=config.perceptual_weight,
        style=config.style_weight,
        adversarial=config.adversarial_weight,
    )
    if config.loss == "l1":
        loss = InpaintingLoss(None, weights=weights, mode="l1", hole_weighting=config.hole_weighting)
        return loss.to(device), "none (--loss l1)"
    from . import vgg_calibration as vc
    from .vgg import VGGUnavailableError, load_vgg

    try:
        vgg = load_vgg()
    except VGGUnavailableError as exc:
        raise TrainError(str(exc)) from exc
    description = vgg.description
    if calibration is not None:
        vc.apply(vgg, calibration)
        description += f"; {calibration.describe()}, kept from the checkpoint"
    elif vc.resolve_mode(config.vgg_calibration, vgg) == "mean":
        try:
            images = vc.calibration_images(config.data, size=config.vgg_size)
        except (OSError, ValueError) as exc:
            raise TrainError(f"cannot calibrate the VGG on {config.data!r}: {exc}") from exc
        calibration = vc.calibrate(vgg, images)
        description += f"; {calibration.describe()}"
    else:
        description += f"; {vc.describe_off(vgg)}"
    vgg = vgg.to(device)
    if config.channels_last:
        vgg = vgg.to(memory_format=torch.channels_last)
    loss = InpaintingLoss(
        vgg,
        weights=weights,
        mode="full",
        vgg_size=config.vgg_size,
        hole_weighting=config.hole_weighting,
    )
    loss.vgg_calibration = calibration
    return loss.to(device), description


class TrainStep:
    """One optimisation step (forward, loss, backward, update); shared with the benchmark."""

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: InpaintingLoss,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None,
        scaler: torch.amp.GradScaler,
        *,
        device: torch.device,
        autocast_dtype: torch.dtype | None,
        channels_last: bool,
        grad_clip: float = 0.0,
        adversary: Adversary | None = None,
    ) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scaler = scaler
        self.device = device
        self.autocast_dtype = autocast_dtype
        self.channels_last = channels_last
        self.grad_clip = grad_clip
        self.adversary = adversary
        self.params = [p for g in optimizer.param_groups for p in g["params"]]

    def weights_at(self, step: int) -> LossWeights:
        """The loss weights in force at ``step``: the adversarial one ramped in
        (:meth:`Adversary.ramp`), the others as given."""
        weights = self.loss_fn.weights
        if self.adversary is None:
            return weights
        return dataclasses.replace(weights, adversarial=weights.adversarial * self.adversary.ramp(step))

    def __call__(
        self,
        images: torch.Tensor,
        holes: torch.Tensor,
        *,
        step: int,
        judged: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``images`` uint8 (N, 3, H, W), ``holes`` bool (N, 1, H, W); returns the detached
        loss terms. With an adversary (``--adversarial-weight``) the generator's loss gains
        its ``adversarial`` term, weighted and ramped in at ``step`` (the phase's 0-based step;
        :meth:`Adversary.ramp`), and one discriminator update follows the generator's (its
        terms ``disc``, ``disc_real``, ``disc_fake`` join the returned ones). While the ramp
        is at 0 the term is only measured, without a gradient: the step is the plain one.
        ``judged`` (bool (N,) on the CPU, ``--adversarial-on native``): the samples the game is
        played on, the others only in the plain loss; None = all. Both halves are means over
        the judged rows of every rank together (under torchrun, each rank's divided by the
        ranks' mean count, :func:`trainer.distributed.mean_over_ranks`)."""
        if self.adversary is not None and judged is not None and not bool(judged.any()):
            raise ValueError("no sample of the batch is judged by the discriminator")
        gt, mask = batch_to_network(images, holes, self.device, non_blocking=True)
        if self.channels_last:
            gt = gt.contiguous(memory_format=torch.channels_last)
        ctx = (
            torch.autocast(self.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with ctx:
            out = self.model(gt * mask, mask)
            terms = self.loss_fn(out, gt, mask)
            if self.adversary is not None:
                comp, hole, real = composite(out, gt, mask), 1.0 - mask, gt
                if judged is not None:  # one index, no device sync per tensor
                    rows = judged.nonzero().squeeze(1).to(self.device, non_blocking=True)
                    comp, hole, real = (t.index_select(0, rows) for t in (comp, hole, real))
                weight = self.weights_at(step).adversarial
                with contextlib.nullcontext() if weight else torch.no_grad():
                    terms["adversarial"] = self.adversary.generator_loss(comp, hole)
                if weight:
                    terms["total"] = terms["total"] + weight * terms["adversarial"]
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms["total"]).backward()
        if self.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        if self.adversary is not None:
            terms.update(self.adversary.update(real, comp, hole))
        return {k: v.detach() for k, v in terms.items()}
