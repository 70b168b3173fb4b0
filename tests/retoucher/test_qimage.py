"""numpy <-> QImage (retoucher.qt.qimage)."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from retoucher.qt.qimage import from_rgb, to_rgb_alpha


@pytest.mark.parametrize(
    "fmt",
    [
        QImage.Format.Format_RGB32,  # a screenshot's
        QImage.Format.Format_Grayscale8,
        QImage.Format.Format_RGB888,
        QImage.Format.Format_ARGB32,
    ],
)
@pytest.mark.parametrize("width", [64, 65])
def test_to_rgb_alpha_returns_arrays_of_their_own(qapp, fmt, width):
    """A 64 px wide RGB32 image came back as a view of a converted QImage freed on return:
    a pasted screenshot was garbage pixels, or the app crashed."""
    image = QImage(width, 30, fmt)
    image.fill(QColor(77, 77, 77))
    rgb, alpha = to_rgb_alpha(image)
    del image
    gc.collect()
    churn = [QImage(width, 30, QImage.Format.Format_RGB888) for _ in range(20)]
    for other in churn:
        other.fill(QColor(200, 10, 10))
    assert rgb.flags.owndata and rgb.flags.c_contiguous
    assert rgb.shape == (30, width, 3) and (rgb == 77).all()
    assert alpha is None  # opaque, with or without an alpha channel


def test_to_rgb_alpha_keeps_translucency_and_round_trips(qapp):
    rgb = np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    back, alpha = to_rgb_alpha(from_rgb(rgb))
    assert np.array_equal(back, rgb) and alpha is None
    image = QImage(13, 9, QImage.Format.Format_RGBA8888)
    image.fill(QColor(10, 20, 30, 128))
    back, alpha = to_rgb_alpha(image)
    assert alpha is not None and alpha.flags.owndata and (alpha == 128).all()
    assert (back == [10, 20, 30]).all()
