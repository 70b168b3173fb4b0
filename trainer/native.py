"""Native-resolution training crops: the scale at which the app's ``Inpainter`` feeds the network.

The prepared images are squares around the bird resized to 256 px, while the app fills holes on
photos at their own resolution (the whole photo when it fits the working size, else a crop with
context around each part of the hole, neither of them downscaled unless the hole is too big).
With ``--native-share P`` a share ``P`` of the samples are crops of the train split's *source*
photos (:func:`trainer.photo_eval.source_photos`: the whole originals where the data has them,
else the bird-square crops) instead of the prepared squares.

The sample of key ``(index, position)`` is taken from the source photo of prepared image
``index`` (so an epoch still visits every photo once) with the sample's generator
(:func:`trainer.data.sample_rng`):

* a scale ``s`` uniform in ``[max(min_scale, crop / shorter side), 1]``: native resolution or
  a downscale (OpenCV's pixel-area averaging, ``INTER_AREA``), never an upscale; the lower
  bound keeps the scaled photo at least as large as the crop (a photo is scaled down at most to
  just fit the crop);
* a random ``crop`` x ``crop`` window of the scaled photo.

A photo whose shorter side is smaller than the crop cannot give one without upscaling, and a
missing or unreadable file none at all: such photos are left out when the source is built
(:meth:`NativeCrops.for_split`, from the files' headers, so the choice is deterministic), and a
native sample of a left-out image is taken from a usable photo drawn with the sample's generator,
so that the share of native samples stays ``P`` (the left-out images still appear as prepared
squares). In the shared CUB copy about a third of the train photos are bird-square crops smaller
than 256 px.

Which positions are native is a function of the position alone: ``p`` is native when
``floor((p + 1) P) > floor(p P)``. Native samples are spread evenly, ``P`` of any run of
consecutive positions to within one (so half of every even batch with ``P = 0.5``), and
``P = 0`` draws nothing extra: the samples are those of a run without native crops, byte for
byte.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.imageio import load_image

from .photo_eval import source_photos

__all__ = ["NativeCrops", "takes_native", "upright_size", "native_scale"]

_EXIF_ORIENTATION = 0x0112


def takes_native(position: int, share: float) -> bool:
    """Whether sample ``position`` of a run is a native crop (``share`` of them, evenly spread)."""
    return share > 0 and math.floor((position + 1) * share) > math.floor(position * share)


def upright_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` of a photo as the app shows it (EXIF orientation applied), from its
    header; None when the file is missing or not an image."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                w, h = h, w
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return None
    return int(w), int(h)


def native_scale(rng: np.random.Generator, short_side: int, crop: int, min_scale: float) -> float:
    """A scale in ``[max(min_scale, crop / short_side), 1]`` (needs ``short_side >= crop``)."""
    return float(rng.uniform(max(min_scale, crop / short_side), 1.0))


@dataclass
class NativeCrops:
    """Random ``crop``-pixel windows of source photos at native resolution or scaled down.

    ``paths[i]``: the source photo of prepared image ``i``, None when it cannot give a crop
    (a sample of ``i`` then takes a usable photo). ``left_out``: how many, by reason."""

    paths: list[Path | None]
    crop: int
    share: float
    min_scale: float = 0.5
    left_out: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.usable_indices = [i for i, p in enumerate(self.paths) if p is not None]
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"the native share must be in [0, 1], got {self.share}")
        if not 0.0 < self.min_scale <= 1.0:
            raise ValueError(f"the native minimum scale must be in (0, 1], got {self.min_scale}")

    @classmethod
    def for_split(
        cls,
        data: str | Path,
        image_ids: Sequence[int],
        *,
        crop: int,
        share: float,
        min_scale: float = 0.5,
        split: str = "train",
    ) -> NativeCrops:
        """The source photos of ``split`` of a prepared folder, one per prepared image id (in
        the order of ``image_ids``), without those too small for ``crop`` or unreadable."""
        by_id = dict(source_photos(data, split, None))
        paths: list[Path | None] = []
        left_out = {"smaller than the crop": 0, "missing or unreadable": 0}
        for image_id in image_ids:
            path = by_id.get(image_id)
            size = upright_size(path) if path is not None else None
            if size is None:
                left_out["missing or unreadable"] += 1
                path = None
            elif min(size) < crop:
                left_out["smaller than the crop"] += 1
                path = None
            paths.append(path)
        return cls(paths, crop, share, min_scale, left_out)

    @property
    def usable(self) -> int:
        return len(self.usable_indices)

    def takes(self, position: int) -> bool:
        return takes_native(position, self.share)

    def __call__(self, rng: np.random.Generator, index: int) -> np.ndarray:
        """A crop (uint8 ``crop x crop x 3``) of photo ``index``, or of a usable photo drawn
        with ``rng`` when ``index`` was left out."""
        path = self.paths[index]
        if path is None:
            if not self.usable_indices:
                raise ValueError(
                    f"none of the {len(self.paths)} source photos can give a {self.crop} px crop"
                )
            path = self.paths[self.usable_indices[int(rng.integers(self.usable))]]
        photo = load_image(path, check_jpeg_data=False).rgb  # read again for every sample
        h, w = photo.shape[:2]
        if min(h, w) < self.crop:  # the file changed since the source was built
            raise ValueError(f"{path} is {w}x{h}, smaller than the {self.crop} px training crop")
        scale = native_scale(rng, min(h, w), self.crop, self.min_scale)
        nw, nh = max(self.crop, round(w * scale)), max(self.crop, round(h * scale))
        if (nw, nh) != (w, h):
            photo = cv2.resize(photo, (nw, nh), interpolation=cv2.INTER_AREA)
        top = int(rng.integers(0, nh - self.crop + 1))
        left = int(rng.integers(0, nw - self.crop + 1))
        return photo[top : top + self.crop, left : left + self.crop]

    def describe(self) -> str:
        """One line for the run's log."""
        gone = ", ".join(f"{n} {why}" for why, n in self.left_out.items() if n)
        return (
            f"native crops: {self.share:.0%} of the samples, scale {self.min_scale:g}-1 (never "
            f"up), from {self.usable} of {len(self.paths)} source photos"
            + (f" (left out, their native samples take another photo: {gone})" if gone else "")
        )
