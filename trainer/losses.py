"""The loss of Liu et al. 2018, section 3.4::

    L_total = L_valid + 6 L_hole + 0.05 L_perceptual + 120 (L_style_out + L_style_comp) + 0.1 L_tv

With ``M`` the paper's mask (1 = valid), ``I_out`` the network output, ``I_gt`` the photo and
``I_comp = M I_gt + (1 - M) I_out``:

* ``L_hole = ||(1 - M)(I_out - I_gt)||_1 / N_Igt`` and ``L_valid = ||M (I_out - I_gt)||_1 / N_Igt``
  with ``N_Igt = C H W``: normalised by the number of elements, not by the hole size.
* ``L_perceptual = sum_p ||Psi_p(I_out) - Psi_p(I_gt)||_1 / N_Psi_p
  + sum_p ||Psi_p(I_comp) - Psi_p(I_gt)||_1 / N_Psi_p`` over VGG pool1..pool3.
* ``L_style_{out,comp} = sum_p ||G_p(I_{out,comp}) - G_p(I_gt)||_1 / C_p^2`` with the Gram
  matrix ``G_p(I) = Psi_p^T Psi_p / (C_p H_p W_p)`` (the paper's K_p).
* ``L_tv`` = the L1 difference of horizontally and vertically adjacent pixels of ``I_comp``, both
  inside P, the hole dilated by one pixel (3x3), divided by ``N_Icomp = C H W``.

Every term is averaged over the batch. Pixel terms use the network's [-1, 1] scale; the VGG
takes care of its own input convention (:mod:`trainer.vgg`). ``mode="l1"`` drops the two VGG
terms (``L_valid + 6 L_hole + 0.1 L_tv``) for training without a VGG.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from engine.seams import square_max

from .distributed import mean_over_ranks
from .train_choices import HOLE_WEIGHTINGS

if TYPE_CHECKING:  # pragma: no cover
    from .vgg_calibration import VGGCalibration

__all__ = [
    "LossWeights",
    "InpaintingLoss",
    "gram_matrix",
    "hole_valid_l1",
    "hole_mse",
    "HOLE_WEIGHTINGS",
    "composite",
    "dilate_holes",
    "total_variation",
    "perceptual_loss",
    "style_loss",
    "loss_balance",
    "describe_balance",
]


@dataclass(frozen=True)
class LossWeights:
    valid: float = 1.0
    hole: float = 6.0
    perceptual: float = 0.05
    style: float = 120.0  # applied to L_style_out and L_style_comp each
    tv: float = 0.1
    adversarial: float = 0.0  # the generator's hinge term (trainer.adversarial; 0 = no discriminator)
    # beyond the paper: the hole's squared error (pulls towards the mean, which PSNR scores)
    hole_mse: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def hole_valid_l1(
    output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, hole_weighting: str = "pixel"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L_hole, L_valid)``; ``mask`` is (N, 1, H, W) with 1 = valid.

    ``hole_weighting="pixel"`` is the paper's: every hole pixel of the batch weighs the same, so
    an image with a 5% hole counts a tenth of one with a 50% hole. ``"image"`` weighs each
    image's hole error by ``f_mean / f``, with ``f`` its hole fraction and ``f_mean`` the mean
    fraction of the batch's images that have a hole (under torchrun, of every rank's batch;
    images without one count 0): the mean error over each hole counts equally per image (as a
    per-image metric such as PSNR does), and the term keeps the paper's scale on average, so the
    other weights keep their balance. A tiny hole
    gets a large weight (a 1-pixel hole in a batch of 20% holes: ~13,000); its error is small in
    absolute terms, so its share of the batch's term stays that of any other image.
    """
    diff = (output - target).abs()
    valid = (diff * mask).flatten(1).sum(1) / diff[0].numel()
    return _hole_term(diff, mask, hole_weighting), valid.mean()


def hole_mse(
    output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, hole_weighting: str = "pixel"
) -> torch.Tensor:
    """``L_hole`` of :func:`hole_valid_l1` with the squared error: the hole's squared error is
    least for the conditional mean of the hole's pixels, which hole PSNR scores, where L1's is
    least for their median."""
    return _hole_term((output - target).square(), mask, hole_weighting)


def _hole_term(diff: torch.Tensor, mask: torch.Tensor, hole_weighting: str) -> torch.Tensor:
    """The mean over the batch of each image's hole error (``diff`` summed over its hole pixels
    over C*H*W), weighted per image by ``hole_weighting``."""
    if hole_weighting not in HOLE_WEIGHTINGS:
        raise ValueError(f"hole_weighting must be one of {HOLE_WEIGHTINGS}, got {hole_weighting!r}")
    hole = (diff * (1.0 - mask)).flatten(1).sum(1) / diff[0].numel()
    if hole_weighting == "image":
        frac = (1.0 - mask).flatten(1).mean(1)  # hole fraction per image
        has_hole = frac > 0
        # the mean fraction over every rank's images with a hole (torchrun: the sums of all
        # ranks, so that each image weighs as in one batch of them all; computed on every rank
        # whatever its holes, as the collective asks)
        sums = mean_over_ranks(torch.stack([frac.sum(), has_hole.sum().to(frac.dtype)]))
        f_mean = sums[0] / sums[1].clamp(min=1e-12)
        weight = torch.where(has_hole, f_mean / frac.clamp(min=1e-12), 0.0)
        hole = hole * weight.detach()
    return hole.mean()


def dilate_holes(mask: torch.Tensor) -> torch.Tensor:
    """The region P: the hole (``mask == 0``) dilated by one pixel in all 8 directions;
    returned as float, 1 = in P."""
    return square_max(1.0 - mask.float(), 1)


def composite(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The network's output in the hole, the target elsewhere (``mask`` 1 = valid)."""
    return mask * target + (1.0 - mask) * output


def total_variation(comp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``L_tv`` of the composite on the one-pixel dilation of the hole."""
    p = dilate_holes(mask).to(comp.dtype)
    n = comp[0].numel()
    horiz = (comp[..., :, 1:] - comp[..., :, :-1]).abs() * (p[..., :, 1:] * p[..., :, :-1])
    vert = (comp[..., 1:, :] - comp[..., :-1, :]).abs() * (p[..., 1:, :] * p[..., :-1, :])
    return ((horiz.flatten(1).sum(1) + vert.flatten(1).sum(1)) / n).mean()


def gram_matrix(feat: torch.Tensor) -> torch.Tensor:
    """``Psi^T Psi / (C H W)`` per image: (N, C, H, W) -> (N, C, C), computed in float32."""
    n, c, h, w = feat.shape
    with torch.autocast(device_type=feat.device.type, enabled=False):
        f = feat.float().reshape(n, c, h * w)
        return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def perceptual_loss(feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> torch.Tensor:
    """``sum_p ||a_p - b_p||_1 / N_p``, averaged over the batch."""
    return sum((a.float() - b.float()).abs().mean() for a, b in zip(feats_a, feats_b))  # type: ignore[return-value]


def style_loss(feats_a: list[torch.Tensor], grams_b: list[torch.Tensor]) -> torch.Tensor:
    """``sum_p ||G_p(a) - G_p(b)||_1 / C_p^2``, averaged over the batch."""
    return sum((gram_matrix(a) - gb).abs().mean() for a, gb in zip(feats_a, grams_b))  # type: ignore[return-value]


def _layer_names(vgg: nn.Module | None, n: int) -> tuple[str, ...]:
    names = getattr(vgg, "layer_names", None)
    return tuple(names) if names is not None and len(names) == n else tuple(f"pool{i + 1}" for i in range(n))


def loss_balance(terms: dict[str, float], weights: LossWeights) -> dict[str, float]:
    """Each weighted term's share of the total (``hole``, ``valid``, ``tv``, ``perceptual``,
    ``style``: out and comp together, ``adversarial``: by its absolute value), and each VGG
    layer's share of its term (``perceptual/pool1``...). ``terms``: unweighted, as :class:`InpaintingLoss` returns them."""
    weighted = {
        "hole": weights.hole * terms["hole"],
        "valid": weights.valid * terms["valid"],
        "tv": weights.tv * terms["tv"],
    }
    if "perceptual" in terms:
        weighted["perceptual"] = weights.perceptual * terms["perceptual"]
        weighted["style"] = weights.style * (terms["style_out"] + terms["style_comp"])
    if "adversarial" in terms:
        # -mean(D(fake)) has either sign: its share is that of its size
        weighted["adversarial"] = abs(weights.adversarial * terms["adversarial"])
    if "hole_mse" in terms:
        weighted["hole_mse"] = weights.hole_mse * terms["hole_mse"]
    total = sum(weighted.values()) or 1.0
    shares = {k: v / total for k, v in weighted.items()}
    for term in ("perceptual", "style"):
        layers = {k: v for k, v in terms.items() if k.startswith(f"{term}_pool")}
        whole = sum(layers.values()) or 1.0
        shares.update({f"{term}/{k.split('_', 1)[1]}": v / whole for k, v in sorted(layers.items())})
    return shares


def describe_balance(terms: dict[str, float], weights: LossWeights) -> str:
    """One line: the weighted total and each term's share, the VGG terms split by layer."""
    shares = loss_balance(terms, weights)
    parts = []
    for term in ("hole", "hole_mse", "valid", "tv", "perceptual", "style", "adversarial"):
        if term not in shares:
            continue
        text = f"{term} {100 * shares[term]:.0f}%"
        layers = [f"{k.split('/')[1]} {100 * v:.0f}%" for k, v in shares.items() if k.startswith(f"{term}/")]
        if layers:
            text += f" ({' / '.join(layers)})"
        if term == "adversarial":  # ramped in by --adversarial-warmup: say at what weight
            text += f" (weight {weights.adversarial:g})"
        parts.append(text)
    return f"weighted loss {terms['total']:.3f}: " + ", ".join(parts)


class InpaintingLoss(nn.Module):
    """``forward(output, target, mask) -> dict`` of the weighted ``total`` and each unweighted
    term (``valid``, ``hole``, ``tv`` and, in ``full`` mode, ``perceptual``, ``style_out``,
    ``style_comp``, and each VGG layer's part of the two VGG terms, out and comp together:
    ``perceptual_pool1``, ``style_pool1``...). Tensors in [-1, 1], mask (N, 1, H, W) float,
    1 = valid.

    ``vgg_size``: run the VGG on images resized to this side (None = full size): a cheaper
    perceptual/style loss for CPU training. ``hole_weighting``: see :func:`hole_valid_l1`.
    """

    def __init__(
        self,
        vgg: nn.Module | None = None,
        weights: LossWeights = LossWeights(),
        mode: str = "full",
        vgg_size: int | None = None,
        hole_weighting: str = "pixel",
    ) -> None:
        super().__init__()
        if hole_weighting not in HOLE_WEIGHTINGS:
            raise ValueError(f"hole_weighting must be one of {HOLE_WEIGHTINGS}, got {hole_weighting!r}")
        self.hole_weighting = hole_weighting
        if mode not in ("full", "l1"):
            raise ValueError(f"loss mode must be 'full' or 'l1', got {mode!r}")
        if mode == "full" and vgg is None:
            raise ValueError("the full loss needs a VGG (or use mode='l1')")
        self.mode = mode
        self.weights = weights
        self.vgg = vgg if mode == "full" else None
        self.vgg_size = vgg_size
        self.vgg_calibration: VGGCalibration | None = None  # set by trainer.step.build_loss

    def _vgg_in(self, x: torch.Tensor) -> torch.Tensor:
        if self.vgg_size and x.shape[-1] != self.vgg_size:
            return F.interpolate(
                x,
                size=(self.vgg_size, self.vgg_size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        return x

    def forward(
        self, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        w = self.weights
        output = output.float()
        target = target.float()
        mask = mask.float()
        comp = composite(output, target, mask)
        hole, valid = hole_valid_l1(output, target, mask, self.hole_weighting)
        tv = total_variation(comp, mask)
        terms = {"valid": valid, "hole": hole, "tv": tv}
        total = w.valid * valid + w.hole * hole + w.tv * tv
        if w.hole_mse:
            terms["hole_mse"] = hole_mse(output, target, mask, self.hole_weighting)
            total = total + w.hole_mse * terms["hole_mse"]
        if self.vgg is not None:
            n = output.shape[0]
            with torch.no_grad():
                feats_gt = self.vgg(self._vgg_in(target))
                grams_gt = [gram_matrix(f) for f in feats_gt]
            # output and composite through the VGG as one batch
            feats = self.vgg(self._vgg_in(torch.cat([output, comp], dim=0)))
            feats_out = [f[:n] for f in feats]
            feats_comp = [f[n:] for f in feats]
            names = _layer_names(self.vgg, len(feats))
            perc_layers, style_out_layers, style_comp_layers = [], [], []
            for fo, fc, fg, gg in zip(feats_out, feats_comp, feats_gt, grams_gt):
                perc_layers.append(perceptual_loss([fo], [fg]) + perceptual_loss([fc], [fg]))
                style_out_layers.append(style_loss([fo], [gg]))
                style_comp_layers.append(style_loss([fc], [gg]))
            perceptual = sum(perc_layers)
            style_out = sum(style_out_layers)
            style_comp = sum(style_comp_layers)
            terms.update(perceptual=perceptual, style_out=style_out, style_comp=style_comp)
            for name, p, so, sc in zip(names, perc_layers, style_out_layers, style_comp_layers):
                terms[f"perceptual_{name}"] = p.detach()
                terms[f"style_{name}"] = (so + sc).detach()
            total = total + w.perceptual * perceptual + w.style * (style_out + style_comp)
        terms["total"] = total
        return terms
