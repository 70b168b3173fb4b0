"""The adversarial term (``--adversarial-weight``): an SN-PatchGAN discriminator with a hinge loss.

As in DeepFill v2 (Yu et al. 2019, "Free-Form Image Inpainting with Gated Convolution"): six 5x5
stride-2 convolutions with spectral normalisation and leaky ReLU judge every patch of the
composite (the network's fill pasted into the photo) together with the hole map, so the
discriminator knows where to look; the real photos go in with the same hole maps, so the map
alone tells it nothing. With ``--disc-input image`` it sees the image alone, as LaMa's does
(Suvorov et al. 2022): it has to find the fill by its look, and cannot learn features aligned
with the hole's edge (the ninth round's fills, judged with the map, drew that edge as a line).
Each output element scores one patch (a receptive field of about 250 px), and the hinge loss is
taken over all of them:

* discriminator: ``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))``
* generator: ``-mean(D(fake))``, added to the paper's loss at ``--adversarial-weight``
  (``LossWeights.adversarial``; :class:`trainer.step.TrainStep` adds it).

That is ``--disc-fake composite``: every patch of a composite is fake, though outside the hole it
is the photo itself. With ``--disc-fake hole`` (after LaMa's ``mask_as_fake_target``) each
score's target follows the share ``m`` of its cell that is hole (:func:`hole_share`): the fake
class is the composite's cells weighted by ``m``, the real class the photos' cells and the
composite's weighted by ``1 - m``, each class averaged on its own (the fill is a small share of
a crop: with one mean over every cell, as LaMa takes it, calling everything real scores
``2 mean(m)``, far below a coin toss's 2, and the eleventh round's first try sat there), so the
discriminator learns to find the fill against the photo around it; the generator's term is
``-sum(m D(fake)) / sum(m)``, taken on the fill's patches instead of diluted over the crop.

The partial-convolution U-Net stays the generator; the discriminator only trains it. One
discriminator update follows each generator update (Adam, ``--disc-lr``, by default ``--lr``,
betas 0.5/0.999 as in DeepFill v2, no schedule). With ``--adversarial-warmup S`` the
discriminator trains alone for the run's first S steps (the generator's term weighs 0), then the
term ramps in linearly over S more (:meth:`Adversary.ramp`): a generator fine-tuned from a good
L1 model then meets a discriminator that already tells its fills apart, not a random one whose
gradients are noise. With ``--adversarial-on native`` the game is played on the batch's native
crops only (``TrainStep``'s ``judged`` rows): the discriminator sees those, the generator's term
counts on those, the bird squares keep the plain loss. With ``--adversarial-rim R`` the
generator's term does not reach the fill's pixels within R px of the photo (:func:`shield_rim`:
they go to the discriminator detached): the discriminator still judges them, the paper's loss
alone trains them (every round whose discriminator could tell where the hole was drew the hole's
outline there, 1-5 px inside the edge). Its weights and optimiser travel in the checkpoint
(``discriminator``), so ``--resume`` continues exactly; ``--init`` and exported weight files
carry the generator only.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from engine.seams import square_max

from .config import DISC_FAKES, DISC_INPUTS  # --disc-fake, --disc-input
from .distributed import mean_over_ranks

__all__ = [
    "DISC_FAKES",
    "DISC_INPUTS",
    "Adversary",
    "PatchDiscriminator",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "shield_rim",
]

DISC_BETAS = (0.5, 0.999)


class PatchDiscriminator(nn.Module):
    """SN-PatchGAN: ``forward(image, hole) -> (N, 1, H/2^layers, W/2^layers)`` patch scores
    (unbounded; high = real). ``image`` in [-1, 1], ``hole`` (N, 1, H, W) with 1 = hole. Widths
    ``width``, 2x, then 4x (DeepFill v2: 64, 6 layers, each score seeing 253 px; 4 layers see
    61 px, the local texture); unlike DeepFill v2, whose last layer keeps 256 channels and
    scores each of them, the last layer here gives one score per patch. ``input``: one of
    :data:`DISC_INPUTS`; with ``"image"`` the hole map is not shown (``forward`` ignores it)."""

    def __init__(self, width: int = 64, layers: int = 6, input: str = "image+hole") -> None:
        super().__init__()
        if width < 1 or layers < 2:
            raise ValueError(f"a discriminator needs width >= 1 and layers >= 2, got {width}, {layers}")
        if input not in DISC_INPUTS:
            raise ValueError(f"a discriminator's input is one of {', '.join(DISC_INPUTS)}, got {input!r}")
        self.width = width
        self.layers = layers
        self.input = input
        widths = [width * min(2**i, 4) for i in range(layers - 1)] + [1]
        convs, c_in = [], 4 if input == "image+hole" else 3
        for c_out in widths:
            convs.append(spectral_norm(nn.Conv2d(c_in, c_out, 5, stride=2, padding=2)))
            c_in = c_out
        self.convs = nn.ModuleList(convs)

    def forward(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        x = torch.cat([image, hole.to(image.dtype)], dim=1) if self.input == "image+hole" else image
        for conv in self.convs[:-1]:
            x = F.leaky_relu(conv(x), 0.2)
        return self.convs[-1](x)

    @property
    def stride(self) -> int:
        """Pixels between neighbouring scores: score ``j`` sits on pixel ``stride * j``."""
        return 2**self.layers

    def describe(self) -> str:
        field = 1 + 4 * (self.stride - 1)  # each 5x5 stride-2 layer adds 4 px at its stride
        shown = "the image and the hole map" if self.input == "image+hole" else "the image alone"
        return (
            f"SN-PatchGAN discriminator, width {self.width}, hinge loss, {self.layers} layers "
            f"(one score per {self.stride} px, each seeing {field} px), shown {shown}"
        )


def hole_share(hole: torch.Tensor, scores: torch.Tensor, stride: int) -> torch.Tensor:
    """The share of each score's cell that is hole: ``hole`` (N, 1, H, W), 1 = hole, averaged
    over ``stride`` x ``stride`` cells centred where the (N, 1, h, w) ``scores`` are (score
    ``j`` of padded stride-2 layers sits on pixel ``stride * j``, so a cell spans
    ``stride * j - stride / 2`` to ``stride * j + stride / 2``; cells cut by the border average
    what is inside), in float32."""
    if hole.shape[1] != 1:
        raise ValueError(f"a hole map has one channel, got {hole.shape[1]}")
    pooled = F.avg_pool2d(hole.float(), stride, stride, padding=stride // 2, count_include_pad=False)
    return pooled[..., : scores.shape[-2], : scores.shape[-1]]


def shield_rim(comp: torch.Tensor, hole: torch.Tensor, rim: int) -> torch.Tensor:
    """``comp`` with its gradient stopped on the hole's rim: the hole pixels (``hole`` (N, 1,
    H, W), 1 = hole) at most ``rim`` px (chessboard distance) from a photo pixel. The values are
    unchanged; ``rim`` 0 returns ``comp`` itself."""
    if rim <= 0:
        return comp
    photo = 1.0 - hole.float()
    near = square_max(photo, rim) > 0
    on_rim = near & (hole > 0)
    return torch.where(on_rim, comp.detach(), comp)


def _mean(total: torch.Tensor, count: torch.Tensor | int) -> torch.Tensor:
    """``total / count``, the count averaged over torchrun's ranks (:func:`mean_over_ranks`): a
    mean over every rank's patches, however many of them (judged rows, hole shares) each rank
    has; 0 when there are none."""
    # a Python count made on the device with new_full: torch.as_tensor would copy it from the
    # host, which waits for a GPU's queued work
    count = total.new_full((), count) if isinstance(count, int) else count.to(total.dtype)
    return total / mean_over_ranks(count).clamp_min(1e-6)


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum(weights * values) / sum(weights)`` (over every rank's); 0 when the weights are all 0."""
    return _mean((weights * values).sum(), weights.sum())


def hinge_discriminator_loss(
    real: torch.Tensor, fake: torch.Tensor, fake_share: torch.Tensor | None = None
) -> torch.Tensor:
    """``mean(relu(1 - real)) + mean(relu(1 + fake))``: zero once real patches score at least 1
    and fake ones at most -1, 2 for a coin toss. With ``fake_share`` (:func:`hole_share`,
    ``--disc-fake hole``) a composite's patch is fake by that share and real by the rest, and
    each class is averaged on its own: calling everything real scores 2, as a coin toss does.
    Under torchrun every mean is over all ranks' patches (:func:`_mean`)."""
    real, fake = real.float(), fake.float()
    if fake_share is None:  # real and fake: the same rows, so one count (one collective)
        if real.shape != fake.shape:
            raise ValueError(
                f"real and fake scores differ in shape: {tuple(real.shape)}, {tuple(fake.shape)}"
            )
        return _mean(F.relu(1.0 - real).sum() + F.relu(1.0 + fake).sum(), real.numel())
    rest = 1.0 - fake_share
    real_sum = F.relu(1.0 - real).sum() + (rest * F.relu(1.0 - fake)).sum()
    real_term = _mean(real_sum, real.numel() + rest.sum())
    return real_term + _weighted_mean(F.relu(1.0 + fake), fake_share)


def hinge_generator_loss(fake: torch.Tensor, fake_share: torch.Tensor | None = None) -> torch.Tensor:
    """``-mean(fake)``: the generator pushes its patches' scores up; with ``fake_share`` the
    mean is weighted by it (the fill's patches; a crop without hole gives 0). Under torchrun
    the mean is over all ranks' patches."""
    if fake_share is None:
        return -_mean(fake.float().sum(), fake.numel())
    return -_weighted_mean(fake.float(), fake_share)


class Adversary:
    """The discriminator the training step plays against: its module (wrapped for DDP by the
    caller when distributed), optimiser and gradient scaler, and the two halves of the game."""

    def __init__(
        self,
        discriminator: nn.Module,
        *,
        lr: float,
        autocast_dtype: torch.dtype | None = None,
        device_type: str = "cpu",
        warmup: int = 0,
        on: str = "all",
        fake: str = "composite",
        rim: int = 0,
    ) -> None:
        if fake not in DISC_FAKES:
            raise ValueError(f"--disc-fake is one of {', '.join(DISC_FAKES)}, got {fake!r}")
        self.discriminator = discriminator
        self.warmup = warmup
        self.on = on  # --adversarial-on: the samples the step lets it judge (all, or native crops)
        self.fake = fake  # --disc-fake: what of a composite is fake (all of it, or the hole)
        self.rim = rim  # --adversarial-rim: px of the fill's edge the generator's term leaves alone
        self.optimizer = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=DISC_BETAS)
        self.scaler = torch.amp.GradScaler(device_type, enabled=autocast_dtype == torch.float16)
        self._autocast = (
            (lambda: torch.autocast(device_type, dtype=autocast_dtype))
            if autocast_dtype is not None
            else contextlib.nullcontext
        )

    @property
    def module(self) -> PatchDiscriminator:
        """The bare discriminator (inside DDP or torch.compile wrappers)."""
        d = self.discriminator
        d = getattr(d, "_orig_mod", d)
        return getattr(d, "module", d)  # type: ignore[return-value]

    def describe(self) -> str:
        """The discriminator, its learning rate, its warm-up (:meth:`ramp`) and the samples it
        judges, for the log."""
        s = self.warmup
        ramp = f"alone for steps 0-{s - 1}, the term ramped in to step {2 * s - 1}" if s else "no warm-up"
        on = ", played on the native crops only" if self.on == "native" else ""
        fake = (
            ", a composite's patches fake by their share of the hole and real elsewhere"
            if self.fake == "hole"
            else ""
        )
        rim = f", the generator's term kept off the fill's outer {self.rim} px" if self.rim else ""
        return f"{self.module.describe()}{fake}, lr {self.optimizer.param_groups[0]['lr']:g}, {ramp}{on}{rim}"

    def _share(self, hole: torch.Tensor, scores: torch.Tensor) -> torch.Tensor | None:
        return hole_share(hole, scores, self.module.stride) if self.fake == "hole" else None

    def ramp(self, step: int) -> float:
        """The share of ``--adversarial-weight`` the generator's term gets at ``step``, the
        phase's 0-based step (``--resume`` continues the count, ``--init`` starts at 0): 0 on
        steps 0 .. ``warmup - 1``, then ``1/warmup``, ``2/warmup`` .. up to 1 from step
        ``2 * warmup - 1`` on."""
        if self.warmup <= 0:
            return 1.0
        return min(1.0, max(0.0, (step - self.warmup + 1) / self.warmup))

    def generator_loss(self, comp: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """The generator's (unweighted) adversarial term for the composite ``comp``; its
        gradient reaches the generator through ``comp``. The discriminator's own gradients
        from it are discarded by :meth:`update` (and, under DDP, not averaged across
        processes)."""
        no_sync = getattr(self.discriminator, "no_sync", contextlib.nullcontext)
        with no_sync():
            scores = self.discriminator(shield_rim(comp, hole, self.rim), hole)
            return hinge_generator_loss(scores, self._share(hole, scores))

    def update(self, real: torch.Tensor, comp: torch.Tensor, hole: torch.Tensor) -> dict[str, torch.Tensor]:
        """One discriminator step on real photos and (detached) composites with the same hole
        maps, in one forward pass; returns the detached ``disc`` loss and the mean scores
        ``disc_real`` and ``disc_fake`` (with ``--disc-fake hole``, the latter over the fill's
        patches, weighted by their share of the hole)."""
        n = real.shape[0]
        with self._autocast():
            scores = self.discriminator(torch.cat([real, comp.detach()]), torch.cat([hole, hole]))
            real_s, fake_s = scores[:n], scores[n:]
            share = self._share(hole, fake_s)
            loss = hinge_discriminator_loss(real_s, fake_s, share)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return {
            "disc": loss.detach(),
            "disc_real": _mean(real_s.detach().float().sum(), real_s.numel()),
            "disc_fake": -hinge_generator_loss(fake_s.detach(), share),
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "width": self.module.width,
            "layers": self.module.layers,
            "input": self.module.input,
            "fake": self.fake,
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # checkpoints written before --disc-layers / --disc-input / --disc-fake have none of
        # them: 6 layers, the map, the whole composite fake
        saved_game = {
            "layers": int(state.get("layers", 6)),
            "width": int(state["width"]),
            "input": str(state.get("input", "image+hole")),
            "fake": str(state.get("fake", "composite")),
        }
        mine_game = {
            "layers": self.module.layers,
            "width": self.module.width,
            "input": self.module.input,
            "fake": self.fake,
        }
        for name, saved in saved_game.items():
            mine = mine_game[name]
            if saved != mine:
                raise ValueError(
                    f"--disc-{name}: the checkpoint's discriminator has {saved}, this run {mine}"
                )
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
