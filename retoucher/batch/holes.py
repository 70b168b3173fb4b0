"""The hole of each photo of a batch, as its :class:`MaskSpec` asks: the photo's mask file
(``dir``), one mask for all (``file``, read once and checked to have a hole), a rectangle
(``rect``) or a centred hole (``center``). Masks are ``bool HxW``, True = hole.

A photo without a mask of its own in the mask folder fails, unless the damage found in it is
filled too (``batch --masks DIR --find-damage``): then its given hole is empty (``missing_ok``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .options import XYWH, BatchError, MaskSpec, Size
from .planning import Job, is_within

__all__ = ["Holes", "centre_hole", "rect_hole"]


class Holes:
    """Makes the hole for a photo of a given size according to the :class:`MaskSpec`.

    Raises :class:`BatchError` on construction when the one mask file (``file``) is unusable;
    :meth:`for_image` raises for a photo whose hole cannot be made (that photo fails).
    ``missing_ok``: a photo without a mask of its own in the mask folder has no given hole
    (:meth:`for_image` returns None) instead of failing."""

    def __init__(self, spec: MaskSpec, input_root: Path, *, missing_ok: bool = False) -> None:
        from engine.imageio import ImageReadError, load_mask

        self.spec = spec
        self.input_root = input_root
        self.missing_ok = missing_ok
        self._load_mask = load_mask
        self._cache: dict[tuple[int, int], np.ndarray] = {}
        if spec.kind == "file":
            try:
                self._file_mask = load_mask(spec.value)
            except ImageReadError as exc:
                raise BatchError(f"the mask file cannot be used: {exc}") from exc
            if not self._file_mask.any():
                raise BatchError(
                    f"the mask file {spec.value} has no hole (no pixel brighter than 127, and no "
                    "opaque stroke on a transparent layer)"
                )

    def for_image(self, job: Job, shape: tuple[int, int]) -> np.ndarray | None:
        """The given hole of the photo of ``job`` (of ``shape``); None when the mask folder has
        no mask for it and that is allowed (``missing_ok``)."""
        kind = self.spec.kind
        if kind == "dir":
            return self._from_mask_folder(job, shape)
        if kind == "file":
            return self._from_mask_file(shape)
        if kind == "rect":
            return rect_hole(self.spec.value, shape)
        return centre_hole(self.spec.value, shape)

    def _from_mask_folder(self, job: Job, shape: tuple[int, int]) -> np.ndarray | None:
        if job.mask is not None:
            return self._load_mask(job.mask, shape)
        if self.missing_ok:
            return None
        stem, sub = job.relative.stem, job.relative.parent
        among_photos = is_within(self.input_root, self.spec.value.resolve())
        here = f"{sub.as_posix()}/" if sub != Path(".") else ""
        if among_photos:
            looked_for = f"{here}{stem}_mask.png"
        else:
            looked_for = f"{here}{stem}.png and {here}{stem}_mask.png"
            if here:
                looked_for += f", then {stem}_mask.png"
        raise FileNotFoundError(f"no mask for it in {self.spec.value} (looked for {looked_for})")

    def _from_mask_file(self, shape: tuple[int, int]) -> np.ndarray:
        """The one mask, scaled to ``shape`` once per size."""
        if shape not in self._cache:
            m = self._file_mask
            if m.shape != shape:
                m = self._load_mask(self.spec.value, shape)
            self._cache[shape] = m
        return self._cache[shape]


def rect_hole(rect: XYWH, shape: tuple[int, int]) -> np.ndarray:
    """The rectangle ``(x, y, w, h)``, clipped to the image; ValueError if it starts outside."""
    h, w = shape
    x, y, rw, rh = rect
    if x >= w or y >= h:
        raise ValueError(f"the rectangle x={x} y={y} starts outside the {w}x{h} image")
    hole = np.zeros((h, w), dtype=bool)
    hole[y : min(h, y + rh), x : min(w, x + rw)] = True
    return hole


def centre_hole(size: Size, shape: tuple[int, int]) -> np.ndarray:
    """A ``(w, h)`` hole in the middle of the image; ValueError if it does not fit."""
    h, w = shape
    cw, ch = size
    if cw > w or ch > h:
        raise ValueError(f"the centred hole {cw}x{ch} does not fit in the {w}x{h} image")
    hole = np.zeros((h, w), dtype=bool)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    hole[y0 : y0 + ch, x0 : x0 + cw] = True
    return hole
