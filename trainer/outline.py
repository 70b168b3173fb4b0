"""The outline figure of ``retoucher-train evaluate --task photos``: does a fill draw lines along
its hole's edge?

Neither PSNR nor the texture ratio sees a thin line traced around a fill (the eleventh round's
adversarial model drew one around most object holes; its texture ratio rose with it). What sets
that line apart from real detail is its direction: it runs along the hole's edge, so its
intensity changes across the edge and hardly along it, while a photo's own detail near the edge
(feathers, leaves, grain) has no reason to follow a shape someone brushed.

:func:`rim_line_score` measures that on the hole's rim, the hole pixels within ``RIM`` px of the
photo: the mean absolute second derivative of the brightness (mean of R, G and B, Gaussian
sigma 1 px) across the edge divided by the same along it; across and along are taken from the
smoothed signed distance to the edge. The *outline ratio* of a fill is its score over the
original's on the same hole: 1.0 = lines along the edge as in the truth, above 1 = lines (an
outline, or a step where the fill meets the photo) the truth does not have. Where a detailed
photo meets a flat or blurred fill, its detail stops along the edge, and that scores above 1 too
(on noise of 40 grey levels: about 1.5 for a blur, 2.3 for a flat fill, 2.6 for a dark line 2-3
px inside the edge); detail added in every direction leaves it near 1 (tests/trainer/test_outline.py).
The brightness is filtered in float64 with torch and the distances are OpenCV's 5x5 chamfer: the
same photo and hole give the same bits on every call.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.geometry import Rect

from .metrics import gaussian_window

__all__ = ["RIM", "rim_line_score"]

RIM = 5  # px: the rim is the hole pixels at most this far from the photo
SIGMA = 1.0  # px: the Gaussian under the second derivatives
NORMAL_SIGMA = 2.0  # px: the Gaussian that smooths the signed distance before its gradient
FLAT = 0.05  # grey levels (0-255) per px^2: a rim whose mean second derivative along is below is flat
ORIENTED = 0.2  # the smoothed signed distance's slope (1 at a straight edge) below which a rim
# pixel has no edge direction: the middle of a thin scratch, where both sides are as near (a
# 2 px scratch's pixels have 0.23, the middle row of a 3 px one 0); on scratches 2-6 px wide the
# direction is still rougher than on wider holes, and the figure with it
_MARGIN = RIM + 4 * int(np.ceil(max(SIGMA, NORMAL_SIGMA))) + 2


def _box(hole: np.ndarray) -> tuple[slice, slice]:
    """The (non-empty) hole's bounding box grown by ``_MARGIN``, inside the image."""
    return Rect.bounding(hole).grown(_MARGIN).clip(hole.shape[1], hole.shape[0]).slices


def _filter(x: np.ndarray, kernels: list[np.ndarray], mode: str) -> list[np.ndarray]:
    """``x`` (H, W) correlated with each 2-D kernel (all of one odd size), the border padded by
    ``mode`` (torch's): float64 in torch, whose CPU convolution gives the same bits for the same
    input wherever the arrays sit in memory (OpenCV's float64 filters vary in the last bits with
    the buffers' alignment, and a report must not)."""
    r = kernels[0].shape[0] // 2
    t = F.pad(
        torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))[None, None], (r, r, r, r), mode=mode
    )
    k = torch.from_numpy(np.stack(kernels))[:, None]
    return list(F.conv2d(t, k)[0].numpy())


def _gaussian(sigma: float) -> np.ndarray:
    """The normalised 2-D Gaussian, cut at 4 sigma."""
    g = gaussian_window(2 * int(np.ceil(4 * sigma)) + 1, sigma).numpy()
    return np.outer(g, g)


# Second derivatives: [1, -2, 1] across, smoothed by [1, 2, 1] / 4 along; the mixed one from
# central differences [-1, 0, 1] / 2 both ways.
_SMOOTH, _SECOND, _FIRST = (
    np.array([1.0, 2.0, 1.0]) / 4,
    np.array([1.0, -2.0, 1.0]),
    np.array([-0.5, 0.0, 0.5]),
)
_DXX, _DYY, _DXY = np.outer(_SMOOTH, _SECOND), np.outer(_SECOND, _SMOOTH), np.outer(_FIRST, _FIRST)


def _edge_frame(hole: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit normal (x, y components) of the hole's edge at every pixel, and the rim: the hole
    pixels within ``RIM`` px of the photo where the edge has a direction (``ORIENTED``). Distances
    from OpenCV's 5x5 chamfer (within 2 % of Euclidean; its exact transform varies from call to
    call in the last bits)."""
    inside = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)
    outside = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)
    (signed,) = _filter(np.where(hole, inside, -outside), [_gaussian(NORMAL_SIGMA)], "replicate")
    ny, nx = np.gradient(signed)
    norm = np.hypot(nx, ny)
    rim = hole & (inside <= RIM) & (norm >= ORIENTED)
    norm[norm == 0] = 1.0
    return nx / norm, ny / norm, rim


def rim_line_score(image: np.ndarray, hole: np.ndarray, *, reference: bool = False) -> float:
    """Mean |second derivative across the edge| over mean |along it| on the hole's rim, for a
    uint8 ``HxWx3`` image and a bool ``HxW`` hole; NaN for an empty hole or a rim without an
    edge direction. A flat rim (mean second derivative along the edge below ``FLAT``) gives a
    result ``across / FLAT``, near 0 for a fill without lines, so that every method is scored on
    the same photos; for the ``reference`` (the original, what results are divided by) it gives
    NaN: a ratio to quantisation noise says nothing, and the photo is left out for all."""
    hole = np.asarray(hole, dtype=bool)
    if image.shape[:2] != hole.shape:
        raise ValueError(f"hole {hole.shape} does not match the image {image.shape[:2]}")
    if not hole.any():
        return float("nan")
    box = _box(hole)
    hole = hole[box]
    (grey,) = _filter(image[box].astype(np.float64).mean(2), [_gaussian(SIGMA)], "replicate")
    gxx, gyy, gxy = _filter(grey, [_DXX, _DYY, _DXY], "replicate")
    nx, ny, rim = _edge_frame(hole)
    if not rim.any():
        return float("nan")
    across = np.abs(nx * nx * gxx + 2 * nx * ny * gxy + ny * ny * gyy)[rim].mean()
    along = np.abs(ny * ny * gxx - 2 * nx * ny * gxy + nx * nx * gyy)[rim].mean()
    if along < FLAT:
        return float("nan") if reference else float(across / FLAT)
    return float(across / along)
