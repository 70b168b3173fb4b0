"""The engine's models on a photo with fully transparent pixels: they read the visible pixels
only. A hidden pixel's colour (``alpha == 0``) is whatever the editor left there, so each call
gives the models the photo with those pixels replaced by a smooth continuation of the visible
ones (:func:`engine.hidden.revealed`; for a fill, of the visible ones outside the hole, near it),
a fill is told which pixels those are (``hidden``: never a source of the photo's grain, which
the smooth continuation took away beside a transparent part), and gives the hidden pixels
outside the hole their own values back. ``alpha`` None (an
opaque photo) calls the model on the photo as it is."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.geometry import Rect
from engine.hidden import hidden_of, kept_hidden, revealed

from .inpainting import DetectorLike, InpainterLike

if TYPE_CHECKING:  # pragma: no cover
    from engine.damage import DamageMap

__all__ = ["detect", "fill", "fill_batch", "why_nothing_to_fill"]


def why_nothing_to_fill(hole: np.ndarray, alpha: np.ndarray | None) -> str | None:
    """Why ``hole`` cannot be filled, or None: the whole photo is hole, or every visible pixel
    is (the rest transparent: a fill would be made of the hidden colour the editor left there)."""
    from engine.inpainter import NothingToFillError

    if hole.all():
        return str(NothingToFillError())
    hidden = hidden_of(alpha, hole.shape)
    if hidden is not None and (hidden | hole).all():
        return "every visible pixel is marked as hole (the rest is transparent): there is nothing to fill it from"
    return None


def _seen(
    inpainter: InpainterLike, image: np.ndarray, hole: np.ndarray, alpha: np.ndarray | None
) -> np.ndarray:
    """What ``inpainter`` reads of ``image`` for ``hole``: the hidden pixels continued from the
    visible ones outside the hole, as far as a crop of the fill can reach (its working size, or
    the hole's own size for a hole filled scaled down)."""
    if alpha is None:
        return image
    hole = np.asarray(hole) != 0
    max_side = getattr(inpainter, "max_side", None)
    if max_side is None:  # no crops: the whole photo reaches the network
        return revealed(image, alpha, hole)
    box = Rect.bounding(hole)
    if box is None:
        return image
    reach = max(int(max_side), box.width, box.height)
    window = box.grown(reach).clip(hole.shape[1], hole.shape[0])
    hidden = hidden_of(alpha, image.shape)
    if hidden is not None and (hidden[window.slices] | hole[window.slices]).all():
        window = None  # nothing visible within reach: continued from the visible pixels further off
    return revealed(image, alpha, hole, window=window)


def fill(
    inpainter: InpainterLike, image: np.ndarray, hole: np.ndarray, alpha: np.ndarray | None, **options: Any
) -> np.ndarray:
    """``inpainter(image, hole, **options)``, reading only the visible pixels of ``image``."""
    hidden = hidden_of(alpha, image.shape)
    if hidden is not None:
        options = {**options, "hidden": hidden}
    return kept_hidden(inpainter(_seen(inpainter, image, hole, alpha), hole, **options), image, hole, alpha)


def fill_batch(
    inpainter: InpainterLike,
    images: Sequence[np.ndarray],
    holes: Sequence[np.ndarray],
    alphas: Sequence[np.ndarray | None],
    **options: Any,
) -> list[np.ndarray]:
    """``inpainter.inpaint_batch(images, holes, **options)``, reading only the visible pixels."""
    seen = [_seen(inpainter, i, h, a) for i, h, a in zip(images, holes, alphas)]
    hidden = [hidden_of(a, i.shape) for i, a in zip(images, alphas)]
    if any(h is not None for h in hidden):
        options = {**options, "hidden": hidden}
    results = inpainter.inpaint_batch(seen, holes, **options)
    return [kept_hidden(r, i, h, a) for r, i, h, a in zip(results, images, holes, alphas)]


def detect(
    detector: DetectorLike,
    image: np.ndarray,
    alpha: np.ndarray | None,
    threshold: float | None = None,
    **options: Any,
) -> DamageMap:
    """``detector(image, threshold, **options)``, reading only the visible pixels of ``image``
    (what it finds on the hidden ones is for the caller to drop: :func:`retoucher.damage.visible_damage`).
    Hidden pixels beyond the detector's ``receptive_radius()`` of every visible one (where it
    says) are left as they are: they reach no visible pixel's finding."""
    radius = getattr(detector, "receptive_radius", None)
    visible = None if alpha is None or radius is None else Rect.bounding(alpha > 0)
    # no window: every hidden pixel continued (the detector's reach unknown; or nothing visible,
    # when revealed() leaves the photo as it is)
    window = None if visible is None else visible.grown(int(radius())).clip(alpha.shape[1], alpha.shape[0])
    return detector(revealed(image, alpha, window=window), threshold, **options)
