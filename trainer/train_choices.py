"""The values ``retoucher-train train``'s options choose among: the command line offers them as
argparse ``choices`` and :class:`trainer.config.TrainConfig` checks against the same tuples.
Torch-free, so that the command line builds its parser (``--help``) without loading torch, as
:mod:`engine.mirror_pass` does for the mirrored pass.

Not here: ``--freeze-bn`` (:data:`trainer.config.FREEZE_BN`, from :data:`engine.unet.BN_SCOPES`,
the model's own) lives in modules that import torch; the command line restates it and the tests
check it offers what the config accepts.
"""

from __future__ import annotations

__all__ = [
    "PHASE_LR",
    "SCHEDULES",
    "LOSSES",
    "VGG_CALIBRATIONS",
    "PRELOADS",
    "AMP_MODES",
    "ADVERSARIAL_ON",
    "DISC_INPUTS",
    "DISC_FAKES",
    "HOLE_WEIGHTINGS",
]

PHASE_LR = {"train": 2e-4, "finetune": 5e-5}  # --phase: its default learning rate
SCHEDULES = ("constant", "cosine")  # --schedule
LOSSES = ("full", "l1")  # --loss
VGG_CALIBRATIONS = ("auto", "mean", "off")  # --vgg-calibration (vgg_calibration.CALIBRATION_MODES)
PRELOADS = ("auto", "yes", "no")  # --preload
AMP_MODES = ("auto", "bf16", "fp16", "off")  # --amp
# --adversarial-on: the samples the adversarial game is played on (every sample, or the native
# crops of --native-share only: the bird squares, most of them scaled up, keep the plain loss)
ADVERSARIAL_ON = ("all", "native")
DISC_INPUTS = ("image+hole", "image")  # --disc-input: what the discriminator is shown
# --disc-fake: what of a composite the discriminator learns to call fake: all of it (DeepFill v2),
# or each patch by its share of the hole, the rest real (LaMa's mask_as_fake_target)
DISC_FAKES = ("composite", "hole")
# --hole-weighting: every hole pixel of the batch alike (the paper's), or each image's mean hole
# error alike (trainer.losses.hole_valid_l1)
HOLE_WEIGHTINGS = ("pixel", "image")
