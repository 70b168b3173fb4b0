"""The pixels of a photo that are not part of the picture: the fully transparent ones
(``alpha == 0``) of a photo with an alpha channel.

Their colour is whatever the editor that made the file left there (black in most, white in
some, the cut-out photo in others), so no model may read it as the photo around a hole: the
damage detector flagged the visible side of a cut-out's outline against hidden black as a
scratch, and a fill beside a transparent area was darkened by it (a 28 px band beside
hidden black on six val photos: mean error 12-28 -> 17-37 grey levels).

:func:`revealed` gives what the engine's models read instead: the photo with its hidden pixels
replaced by a smooth continuation of the visible ones (push-pull, as in Gortler et al. 1996's
Lumigraph: a pyramid of means of the visible pixels, each level filling the unknown pixels of
the finer one with its colours upsampled bilinearly). For a fill, the hole's own pixels are no
more known than the hidden ones (an object brushed out beside the transparent part would
otherwise be continued into it, and the fill would read it back), and only a ``window`` around
the hole is worked on: what a network crop can reach, not the whole photo (24-megapixel photos).
:func:`kept_hidden` puts the hidden pixels' own values back into a result wherever it was not
asked to change them. Import-light: torch is imported on the first call (a fill or a detection
has it loaded already), so the app's Qt side can import this module.
"""

from __future__ import annotations

import numpy as np

from .geometry import Rect

__all__ = ["hidden_of", "kept_hidden", "revealed"]


def hidden_of(alpha: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """The ``bool HxW`` hidden pixels (``alpha == 0``) of a photo of ``shape`` (H, W, ...);
    None when there are none (no alpha, or nothing fully transparent). ValueError for an alpha
    of another shape."""
    if alpha is None:
        return None
    h, w = shape[:2]
    if alpha.shape != (h, w):
        raise ValueError(f"the alpha channel is {alpha.shape[1::-1]}, the photo {(w, h)} (width, height)")
    hidden = alpha == 0
    return hidden if hidden.any() else None


def revealed(
    image: np.ndarray,
    alpha: np.ndarray | None,
    hole: np.ndarray | None = None,
    *,
    window: Rect | None = None,
) -> np.ndarray:
    """``image`` (``uint8 HxWx3``) with its hidden pixels (``alpha == 0``) replaced by a smooth
    continuation of the visible ones, the ``hole`` (bool HxW, a fill's) not counted as visible;
    with ``window`` (a box in the image), only there (the hidden pixels outside keep their values:
    what a fill's crops or a detector's reach do not read). A new array, or ``image`` itself when
    nothing is hidden there or nothing is known to continue. The known pixels are ``image``'s,
    exactly."""
    hidden = hidden_of(alpha, image.shape)
    if hidden is None:
        return image
    hole = None if hole is None else np.asarray(hole) != 0
    box = (slice(None), slice(None)) if window is None else window.slices
    unknown = hidden[box] if hole is None else hidden[box] | hole[box]
    fill_here = hidden[box]
    if not fill_here.any() or unknown.all():
        return image
    out = image.copy()
    out[box][fill_here] = _push_pull(image[box], ~unknown, fill_here)
    return out


def kept_hidden(
    result: np.ndarray, image: np.ndarray, hole: np.ndarray, alpha: np.ndarray | None
) -> np.ndarray:
    """``result`` (a fill of :func:`revealed`'s image) with ``image``'s own values back on its
    hidden pixels outside the ``hole``: a fill changes nothing but the hole, the hidden colour
    included. ``result`` itself when nothing outside the hole is hidden."""
    hidden = hidden_of(alpha, image.shape)
    if hidden is None:
        return result
    back = hidden & ~(np.asarray(hole) != 0)
    if not back.any():
        return result
    out = result.copy()
    out[back] = image[back]
    return out


def _push_pull(image: np.ndarray, known: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """The colours (uint8 nx3) of the ``unknown`` pixels of ``image`` (uint8 hxwx3; ``known``,
    bool hxw, the pixels to continue from): the next coarser level's colours of a pyramid of
    means of the known pixels (2x2 sums), upsampled bilinearly, level by level."""
    import torch
    import torch.nn.functional as F

    with torch.inference_mode():
        weight = torch.from_numpy(np.ascontiguousarray(known)).to(torch.float32)[None, None]
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].to(torch.float32)
        levels = [(x.mul_(weight), weight)]
        while min(levels[-1][1].shape[-2:]) > 1 and not bool((levels[-1][1] > 0).all()):
            values, w = levels[-1]
            # sums of each 2x2 cell (the last row or column alone on an odd side)
            levels.append(
                (
                    F.avg_pool2d(values, 2, ceil_mode=True, divisor_override=1),
                    F.avg_pool2d(w, 2, ceil_mode=True, divisor_override=1),
                )
            )
        values, w = levels[-1]
        colour = values / w.clamp(min=1e-12)
        if not bool((w > 0).all()):  # a 1-pixel side left unknown parts: their known mean
            mean = values.sum((2, 3), keepdim=True) / w.sum((2, 3), keepdim=True).clamp(min=1e-12)
            colour = torch.where(w > 0, colour, mean)
        for values, w in reversed(levels[1:-1]):
            colour = torch.where(w > 0, values / w.clamp(min=1e-12), _up2(colour, w.shape[-2:]))
        if len(levels) > 1:  # the image's own level: only its unknown pixels are wanted
            colour = _up2(colour, weight.shape[-2:])
        where = torch.from_numpy(np.flatnonzero(unknown))
        picked = colour[0].flatten(1).index_select(1, where)
        return picked.t().round_().clamp_(0, 255).to(torch.uint8).numpy()


def _up2(x, size):  # torch tensors; typed loosely: torch is imported on first use
    """``x`` at twice its size, bilinear, cut to ``size``: a coarse cell is the 2x2 fine cells it
    summed (the last one alone on an odd side), so the scale is exactly 2, not size / coarse."""
    import torch.nn.functional as F

    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)[..., : size[0], : size[1]]
