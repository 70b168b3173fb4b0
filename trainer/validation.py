"""Validation during training: a fixed set of validation crops and masks (the same at every
validation of a run, and after a resume), the metrics of the model's composites on it (hole L1,
PSNR, SSIM: :func:`trainer.inference.score`), and the TensorBoard grid of a few of them.

Validation masks come from the generators of training, folder masks from those held out of
training (``--mask-holdout``); each image's mask is drawn with a generator seeded by
``(0x7A1, index)``: not by the run's ``--seed`` (a new data order), so that runs of one mask
mixture and mask folder are validated on the same holes and their figures compare (the shipped
model's PSNR on the holes of seeds 0-4 spread over 2.4 dB when the seed drew them).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from engine.convert import from_network, to_network

from .config import TrainConfig
from .data import PreparedImages, UnreadableImage
from .inference import fill_with_model, score
from .masks import MaskFolder, MaskMixture, held_out_subset, parse_mask_mixture

__all__ = ["Validator", "fixed_val_set", "image_grid", "val_mask_subset"]

GRID_ROWS = 4  # images in the TensorBoard grid


def val_mask_subset(config: TrainConfig, train_masks: MaskMixture, say: Callable[[str], None]) -> str:
    """Validation draws folder masks from those held out of training; a folder too small to
    have any held out (a handful of files) falls back to all of them, with a warning."""
    folder = next((g for g in train_masks.generators if isinstance(g, MaskFolder)), None)
    if folder is None:
        return "holdout"  # no folder masks: the subset is not used
    subset, warning = held_out_subset(folder.directory, config.mask_holdout)
    if warning:
        say(f"warning: {warning} (validation)")
    return subset


def fixed_val_set(
    config: TrainConfig, size: int, train_masks: MaskMixture, say: Callable[[str], None]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Centre crops of ``size`` px of ``--val-images`` validation images (evenly spaced) and their
    masks (uint8 ``(N, size, size, 3)``, bool ``(N, size, size)``); None when validation is off
    or the data has no validation split."""
    if not config.val_every or config.val_images <= 0:
        return None
    try:
        images = PreparedImages(config.data, "val", preload=True, limit=config.val_images)
    except UnreadableImage:
        raise  # a damaged image is the data's problem to mend, not a reason to go without
    except ValueError as exc:  # said: a run asked to validate (--val-every) showed no figures and no reason
        say(f"warning: no validation ({exc}); the run trains without it")
        return None
    masks = parse_mask_mixture(
        config.mask_spec,
        config.mask_dir,
        holdout=config.mask_holdout,
        folder_subset=val_mask_subset(config, train_masks, say),
        augment=False,
    )
    h, w = images.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    arr = np.stack([images[i][top : top + size, left : left + size] for i in range(len(images))])
    holes = np.stack([masks(np.random.default_rng([0x7A1, i]), size, size) for i in range(len(arr))])
    # a hole over the whole image (an all-white mask among the held-out ones) has nothing to
    # fill from: the first validation failed on it, before the checkpoint due at that step
    whole = holes.reshape(len(holes), -1).all(1)
    if whole.any():
        say(
            f"warning: {int(whole.sum())} of the {len(holes)} validation holes cover the whole image "
            "(an all-white mask?); validation leaves them out"
        )
        arr, holes = arr[~whole], holes[~whole]
        if not len(arr):
            say(
                "warning: no validation (every validation hole covers the whole image); the run trains without it"
            )
            return None
    return arr, holes


def image_grid(
    images: np.ndarray, holes: np.ndarray, filled_raw: np.ndarray, comps: np.ndarray
) -> np.ndarray:
    """Rows of (masked input, output, composite, ground truth), CHW uint8 for TensorBoard."""
    rows = []
    for img, hole, raw, comp in zip(images, holes, filled_raw, comps):
        masked = img.copy()
        masked[hole] = 255
        rows.append(np.concatenate([masked, raw, comp, img], axis=1))
    return np.concatenate(rows, axis=0).transpose(2, 0, 1)


class Validator:
    """The model's metrics and image grid on a fixed validation set."""

    def __init__(
        self,
        images: np.ndarray,
        holes: np.ndarray,
        *,
        device: torch.device,
        autocast_dtype: torch.dtype | None,
        batch_size: int,
    ) -> None:
        self.images, self.holes = images, holes
        self.device = device
        self.autocast_dtype = autocast_dtype
        self.batch_size = batch_size

    @classmethod
    def for_run(
        cls,
        config: TrainConfig,
        size: int,
        train_masks: MaskMixture,
        say: Callable[[str], None],
        *,
        device: torch.device,
        autocast_dtype: torch.dtype | None,
    ) -> Validator | None:
        """The run's validator (None when it does not validate: see :func:`fixed_val_set`)."""
        val_set = fixed_val_set(config, size, train_masks, say)
        if val_set is None:
            return None
        return cls(
            *val_set,
            device=device,
            autocast_dtype=autocast_dtype,
            batch_size=max(1, config.batch_size * 2),
        )

    def metrics(self, model: torch.nn.Module) -> dict[str, float]:
        """Mean hole L1, PSNR and SSIM of the model's composites (in eval mode, under the run's
        autocast)."""
        comps = fill_with_model(
            model,
            self.images,
            self.holes,
            device=self.device,
            autocast_dtype=self.autocast_dtype,
            batch_size=self.batch_size,
        )
        s = score(comps, self.images, self.holes)
        return {k: float(np.nanmean(v)) for k, v in s.items()}

    def grid(self, model: torch.nn.Module) -> np.ndarray:
        """:func:`image_grid` of the first images: the raw output in full precision (eval mode,
        no autocast), its composite, the input and the truth."""
        images, holes = self.images[:GRID_ROWS], self.holes[:GRID_ROWS]
        with torch.no_grad():
            was = model.training
            model.eval()
            x, m = to_network(images, holes, self.device)
            raw = from_network(model(x, m))
            model.train(was)
        comps = np.where(holes[..., None], raw, images)
        return image_grid(images, holes, raw, comps)
