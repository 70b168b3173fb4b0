"""Photos and samples for the damage detector.

The photos are the *source* photos of one split of a prepared inpainting folder (``retoucher-train
prepare``): the whole originals where the shared copy has them, else the bird-square crops, at
their native resolution. Training uses the inpainting train split only, so the detector never sees
the val or test photos that its evaluation (and the inpainting model's) reports on.

``DamageDataset[(index, position)]`` crops photo ``index`` at a random scale and position and
draws a sample (:func:`trainer.damage_synth.synthesize`) from ``sample_rng(seed, position)``: the
same key always gives the same sample, so a resumed run sees exactly the data it would have.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .damage_synth import synthesize
from .data import load_rgb, sample_rng
from .photo_eval import source_photos

__all__ = ["DamageDataset", "damage_photos", "random_crop", "collate_damage"]

CLEAN_SHARE = 0.2  # samples with no damage at all: hard negatives


def damage_photos(data: str | Path, split: str, limit: int | None = None) -> list[tuple[int, Path]]:
    """``(image id, path)`` of the source photos of ``split`` that exist on disk."""
    return [(i, p) for i, p in source_photos(data, split, limit) if p.is_file()]


def random_crop(rng: np.random.Generator, photo: np.ndarray, size: int) -> np.ndarray:
    """A ``size`` x ``size`` crop at a random scale (0.5-1x; upscaled only when the photo is
    smaller than ``size``) and position, randomly mirrored."""
    h, w = photo.shape[:2]
    scale = rng.uniform(0.5, 1.0)
    scale = max(scale, size / min(h, w))
    if scale > 1.0 or abs(scale - 1.0) > 1e-3:  # smaller than the crop by any amount: scaled up
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        photo = np.asarray(Image.fromarray(photo).resize((nw, nh), Image.Resampling.BILINEAR))
        h, w = nh, nw
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    crop = photo[y : y + size, x : x + size]
    return crop[:, ::-1] if rng.random() < 0.5 else crop


class DamageDataset(Dataset):
    """``dataset[(index, position)] -> (damaged uint8 (3, S, S), label float (1, S, S))``."""

    def __init__(self, photos: Sequence[Path], crop: int, seed: int) -> None:
        if not photos:
            raise ValueError("no photos to train the damage detector on")
        self.photos = list(photos)
        self.crop = crop
        self.seed = seed

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, position = key
        rng = sample_rng(self.seed, position)
        photo = random_crop(rng, load_rgb(self.photos[index]), self.crop)
        sample = synthesize(rng, photo, damage=rng.random() >= CLEAN_SHARE)
        image = torch.from_numpy(np.ascontiguousarray(sample.damaged)).permute(2, 0, 1)
        label = torch.from_numpy(sample.label)[None].float()
        return image, label


def collate_damage(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([b[0] for b in batch]), torch.stack([b[1] for b in batch])
