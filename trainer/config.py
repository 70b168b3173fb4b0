"""Typed configuration of a training run (saved in every checkpoint), and the error of a run
that cannot start or continue."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.unet import BN_SCOPES, MODEL_PRESETS, UNetConfig, paper_kernels

from .train_choices import (  # the command line's choices (torch-free), checked here
    ADVERSARIAL_ON,
    AMP_MODES,
    DISC_FAKES,
    DISC_INPUTS,
    HOLE_WEIGHTINGS,
    LOSSES,
    PHASE_LR,
    PRELOADS,
    SCHEDULES,
    VGG_CALIBRATIONS,
)

__all__ = [
    "TrainConfig",
    "TrainError",
    "RUNTIME_FIELDS",
    "PER_INVOCATION_FIELDS",
    "DERIVED_FIELDS",
    "IDLE_UNLESS",
    "PHASE_LR",
    "ADVERSARIAL_ON",
    "DISC_INPUTS",
    "DISC_FAKES",
    "FREEZE_BN",
    "model_config",
    "default_masks",
]

# --freeze-bn: the BatchNorm layers whose statistics and affine parameters stay as --init left
# them (engine.unet.BN_SCOPES, or none); the default follows --phase
FREEZE_BN = ("none", *BN_SCOPES)


class TrainError(RuntimeError):
    """A run that cannot start or continue (bad options, diverged loss...)."""


# Fields that may change when a run is resumed: they do not change what is learned.
RUNTIME_FIELDS = frozenset(
    {
        "steps",
        "workers",
        "compile",
        "threads",
        "ckpt_every",
        "keep_checkpoints",
        "log_every",
        "val_every",
        "image_every",
        "time_limit",
        "stop_after",
        "progress",
        "resume",
        "preload",
        "device",
    }
)


# Runtime fields that belong to one invocation: a resumed run does not inherit them from the
# checkpoint (a run started with --stop-after 500 and resumed with --resume alone runs on).
PER_INVOCATION_FIELDS = frozenset({"stop_after", "time_limit"})

# Options whose None derives the value in effect from other options, and the property that gives
# it: a --resume that names the value already in effect (--lr 2e-4 for a --phase train run that
# gave none) changes nothing.
DERIVED_FIELDS = {
    "lr": "learning_rate",
    "freeze_bn": "frozen_bn",
    "disc_lr": "disc_learning_rate",
    "masks": "mask_spec",
}


# Options that act only through another: naming one while that other leaves it idle is a
# mistake the run would hide (a --disc-width with no discriminator). Field -> (the condition
# under which it acts, as a predicate of the config, and the option that says so).
IDLE_UNLESS: dict[str, tuple[Callable[[TrainConfig], bool], str]] = {
    **dict.fromkeys(
        (
            "disc_width",
            "disc_layers",
            "disc_input",
            "disc_fake",
            "disc_lr",
            "adversarial_warmup",
            "adversarial_on",
            "adversarial_rim",
        ),
        (lambda c: c.adversarial_weight > 0, "--adversarial-weight above 0"),
    ),
    **dict.fromkeys(
        ("perceptual_weight", "style_weight", "vgg_size", "vgg_calibration"),
        (lambda c: c.loss == "full", "--loss full"),
    ),
    "native_min_scale": (lambda c: c.native_share > 0, "--native-share above 0"),
    "min_lr_ratio": (lambda c: c.schedule == "cosine", "--schedule cosine"),
}


def default_masks(mask_dir: str | None) -> str:
    if mask_dir:
        return "center:0.4,strokes:0.3,folder:0.3"
    return "center:0.4,rects:0.2,strokes:0.4"


@dataclass
class TrainConfig:
    data: str = ""
    out: str = ""
    # model (ignored with --init: the architecture comes from the initial weights)
    preset: str = "paper"
    widths: tuple[int, ...] | None = None
    depth: int | None = None
    refine: int | None = None  # width of the full-resolution refinement head (None: preset/--init's)
    refine_lr_scale: float = 10.0  # the refinement head learns at this times --lr
    # phase and optimisation
    phase: str = "train"  # "train" or "finetune" (lr 5e-5, and the encoder BN by default)
    freeze_bn: str | None = None  # FREEZE_BN; None: by phase (finetune: "encoder", train: "none")
    init: str | None = None  # checkpoint (.pt) or weight file (.safetensors) to start from
    lr: float | None = None  # None: 2e-4 for train, 5e-5 for finetune
    schedule: str = "constant"  # "constant" (the paper) or "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1  # cosine floor, as a fraction of lr
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # 0 = off
    ema: float = 0.0  # EMA decay of the weights (0 = off); export uses the EMA when present
    batch_size: int = 6  # per process
    steps: int = 10_000
    # data
    masks: str | None = None  # mixture spec; None = default_masks(mask_dir)
    mask_dir: str | None = None
    mask_holdout: float = 0.2  # fraction of --mask-dir files kept out of training for evaluate
    crop: int | None = None  # random crops of this side (None = the prepared size)
    native_share: float = 0.0  # share of samples cropped from the source photos (trainer.native)
    native_min_scale: float = 0.5  # native crops: photos scaled by [this, 1], never up
    hflip: bool = True
    preload: str = "auto"  # "auto" | "yes" | "no"
    workers: int = 1
    seed: int = 0
    # loss
    loss: str = "full"  # "full" (the paper) or "l1" (no VGG: valid + 6 hole + 0.1 tv)
    vgg_size: int | None = None  # run the VGG at this resolution (None = full)
    vgg_calibration: str = "auto"  # trainer.vgg_calibration: auto | mean | off
    hole_weighting: str = "pixel"  # "pixel" (the paper) or "image" (each image's hole error counts alike)
    valid_weight: float = 1.0  # weight of L_valid (the paper: 1)
    hole_mse_weight: float = 0.0  # a squared hole error term beside L_hole (not in the paper: 0)
    perceptual_weight: float = 0.05  # weight of L_perceptual (the paper: 0.05)
    style_weight: float = 120.0  # weight of L_style_out and L_style_comp each (the paper: 120)
    adversarial_weight: float = 0.0  # the SN-PatchGAN hinge term (trainer.adversarial; 0 = none)
    disc_width: int = 64  # the discriminator's first width (DeepFill v2: 64)
    disc_layers: int = 6  # its 5x5 stride-2 layers (DeepFill v2: 6; 4 judges ~60 px patches)
    disc_input: str = "image+hole"  # what it is shown: image+hole (DeepFill v2) or image (LaMa)
    disc_fake: str = "composite"  # what it calls fake: the composite (DeepFill v2) or the hole (LaMa)
    disc_lr: float | None = None  # the discriminator's learning rate (None = learning_rate)
    adversarial_warmup: int = 0  # steps of the discriminator alone, then as many to ramp the term in
    adversarial_on: str = "all"  # the samples the game is played on: all, or native (crops only)
    adversarial_rim: int = 0  # px: the generator's term does not reach the fill's pixels this near the photo
    # runtime
    device: str = "auto"
    amp: str = "auto"  # auto = bf16 on Ampere-on GPUs, fp16 on older ones, off on CPU; or bf16 | fp16 | off
    channels_last: bool = True
    compile: bool = False
    threads: int = 0  # torch CPU threads (0 = cores / local processes)
    ckpt_every: int = 500
    keep_checkpoints: bool = False  # also keep ckpt_<step>.pt copies
    log_every: int = 20
    val_every: int = 500
    val_images: int = 64
    image_every: int = 0  # TensorBoard image grids (0 = with validation)
    time_limit: float | None = None  # minutes; checkpoint and stop before running past it
    stop_after: int | None = None  # stop (with a checkpoint) after this many steps of this run
    progress: bool = True
    resume: bool = False

    def __post_init__(self) -> None:
        if self.widths is not None:
            self.widths = tuple(int(w) for w in self.widths)
        if self.phase not in PHASE_LR:
            raise ValueError(f"--phase must be one of {sorted(PHASE_LR)}, got {self.phase!r}")
        if self.freeze_bn is not None and self.freeze_bn not in FREEZE_BN:
            raise ValueError(f"--freeze-bn must be one of {', '.join(FREEZE_BN)}, got {self.freeze_bn!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.vgg_calibration not in VGG_CALIBRATIONS:
            raise ValueError(
                f"--vgg-calibration must be one of {', '.join(VGG_CALIBRATIONS)}, got {self.vgg_calibration!r}"
            )
        if self.hole_weighting not in HOLE_WEIGHTINGS:
            raise ValueError(
                f"--hole-weighting must be one of {', '.join(HOLE_WEIGHTINGS)}, got {self.hole_weighting!r}"
            )
        if not 0.0 < self.refine_lr_scale <= 1000.0:
            raise ValueError(f"--refine-lr-scale must be in (0, 1000], got {self.refine_lr_scale}")
        for name in ("valid", "hole_mse", "perceptual", "style", "adversarial"):
            value = getattr(self, f"{name}_weight")
            if not 0.0 <= value <= 1000.0:
                raise ValueError(f"--{name.replace('_', '-')}-weight must be in [0, 1000], got {value}")
        if not 1 <= self.disc_width <= 1024:
            raise ValueError(f"--disc-width must be in [1, 1024], got {self.disc_width}")
        if not 2 <= self.disc_layers <= 8:
            raise ValueError(f"--disc-layers must be in [2, 8], got {self.disc_layers}")
        if self.disc_input not in DISC_INPUTS:
            raise ValueError(f"--disc-input must be one of {', '.join(DISC_INPUTS)}, got {self.disc_input!r}")
        if self.disc_fake not in DISC_FAKES:
            raise ValueError(f"--disc-fake must be one of {', '.join(DISC_FAKES)}, got {self.disc_fake!r}")
        if self.disc_lr is not None and not 0.0 < self.disc_lr <= 1.0:
            raise ValueError(f"--disc-lr must be in (0, 1], got {self.disc_lr}")
        if self.adversarial_warmup < 0:
            raise ValueError(f"--adversarial-warmup must be >= 0, got {self.adversarial_warmup}")
        if not 0 <= self.adversarial_rim <= 64:
            raise ValueError(f"--adversarial-rim must be in [0, 64] px, got {self.adversarial_rim}")
        if self.adversarial_on not in ADVERSARIAL_ON:
            raise ValueError(
                f"--adversarial-on must be one of {', '.join(ADVERSARIAL_ON)}, got {self.adversarial_on!r}"
            )
        if (
            self.adversarial_weight
            and self.adversarial_on == "native"
            and self.native_share * self.batch_size < 1
        ):
            raise ValueError(
                f"--adversarial-on native needs a native crop in every batch: --native-share "
                f"{self.native_share:g} x --batch-size {self.batch_size} is below 1"
            )
        if self.amp not in AMP_MODES:
            raise ValueError(f"--amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.preload not in PRELOADS:
            raise ValueError(f"--preload must be one of {', '.join(PRELOADS)}, got {self.preload!r}")
        if self.batch_size < 1 or self.steps < 0:
            raise ValueError("--batch-size must be >= 1 and --steps >= 0")
        if Path(self.out).exists() and not Path(self.out).is_dir():
            raise ValueError(f"--out {self.out} is a file, not a run folder")
        # intervals are divisors (0 would stop the run at its first step, after it trained)
        for name, least in (("ckpt_every", 1), ("log_every", 1), ("val_every", 0), ("image_every", 0),
                            ("threads", 0), ("workers", 0), ("val_images", 0)):  # fmt: skip
            value = getattr(self, name)
            if value is not None and value < least:
                raise ValueError(f"--{name.replace('_', '-')} must be >= {least}, got {value}")
        # a negative clip flipped every gradient (the loss rose: 0.64 -> 1.68 over 60 steps)
        if not 0.0 <= self.grad_clip < float("inf"):
            raise ValueError(f"--grad-clip must be >= 0 (0 = off), got {self.grad_clip}")
        if self.lr is not None and not 0.0 < self.lr < float("inf"):
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if self.warmup_steps < 0:
            raise ValueError(f"--warmup-steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"--min-lr-ratio must be in [0, 1], got {self.min_lr_ratio}")
        # --time-limit 0 or less stopped after one step, --stop-after 0 after none (a checkpoint
        # rewritten), -1 ran to the end; a seed below 0 or from 2**64 failed once the run folder
        # was made
        if self.time_limit is not None and not 0.0 < self.time_limit < float("inf"):
            raise ValueError(f"--time-limit must be > 0 minutes, got {self.time_limit}")
        if self.stop_after is not None and self.stop_after < 1:
            raise ValueError(f"--stop-after must be >= 1 step, got {self.stop_after}")
        if not 0 <= self.seed < 2**64:
            raise ValueError(f"--seed must be in [0, 2**64), got {self.seed}")
        if self.preset not in MODEL_PRESETS:  # checked even where --widths decides the network
            raise ValueError(f"unknown --preset {self.preset!r}; choose from {', '.join(MODEL_PRESETS)}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError("--ema must be in [0, 1)")
        if not 0.0 <= self.mask_holdout < 1.0:
            raise ValueError("--mask-holdout must be in [0, 1)")
        if not 0.0 <= self.native_share <= 1.0:
            raise ValueError(f"--native-share must be in [0, 1], got {self.native_share}")
        if not 0.0 < self.native_min_scale <= 1.0:
            raise ValueError(f"--native-min-scale must be in (0, 1], got {self.native_min_scale}")

    def check_named(self, named: set[str]) -> None:
        """Refuse a named option (``named``: given on the command line) that this config leaves
        idle (IDLE_UNLESS)."""
        idle = [name for name in sorted(named & IDLE_UNLESS.keys()) if not IDLE_UNLESS[name][0](self)]
        if idle:
            why = "; ".join(f"--{n.replace('_', '-')} acts only with {IDLE_UNLESS[n][1]}" for n in idle)
            raise TrainError(f"{why}: drop it or give that option")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else PHASE_LR[self.phase]

    @property
    def frozen_bn(self) -> str:
        """The BatchNorm layers that stay frozen (FREEZE_BN): --freeze-bn, else by --phase."""
        if self.freeze_bn is not None:
            return self.freeze_bn
        return "encoder" if self.phase == "finetune" else "none"

    @property
    def disc_learning_rate(self) -> float:
        return self.disc_lr if self.disc_lr is not None else self.learning_rate

    @property
    def mask_spec(self) -> str:
        return self.masks or default_masks(self.mask_dir)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["widths"] is not None:
            d["widths"] = list(d["widths"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def model_config(config: TrainConfig, image_size: int) -> UNetConfig:
    """The architecture asked for by ``--preset``/``--widths``/``--depth``/``--refine``."""
    cfg = _base_model_config(config, image_size)
    if config.refine is not None:
        cfg = dataclasses.replace(cfg, refine=config.refine)
    return cfg


def _base_model_config(config: TrainConfig, image_size: int) -> UNetConfig:
    if config.widths:
        if config.depth is not None and config.depth != len(config.widths):
            raise ValueError(f"--depth {config.depth} disagrees with {len(config.widths)} --widths")
        kernels = paper_kernels(len(config.widths))
        return UNetConfig(widths=config.widths, kernels=kernels, image_size=image_size)
    preset = MODEL_PRESETS[config.preset]  # a known name: TrainConfig checks it
    if config.depth is not None and config.depth != preset.depth:
        return UNetConfig.scaled(preset.widths[0], depth=config.depth, image_size=image_size)
    return dataclasses.replace(preset, image_size=image_size)
