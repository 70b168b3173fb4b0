"""numpy <-> QImage without surprises: RGB arrays in, RGB(+alpha) arrays out."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColorSpace, QImage


def wrap_rgb(array: np.ndarray) -> QImage:
    """A QImage that *shares* the memory of a C-contiguous uint8 HxWx3 array (no copy).

    The caller keeps ``array`` alive for as long as the QImage is used; writes to the array
    show up in the image on the next repaint.
    """
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3 or not array.flags.c_contiguous:
        raise ValueError("wrap_rgb needs a C-contiguous uint8 HxWx3 array")
    h, w = array.shape[:2]
    return QImage(array.data, w, h, array.strides[0], QImage.Format.Format_RGB888)


def to_rgb_alpha(image: QImage) -> tuple[np.ndarray, np.ndarray | None]:
    """Copy a QImage of any format into ``(rgb uint8 HxWx3, alpha uint8 HxW | None)``;
    alpha is None when the image has no alpha channel or is fully opaque."""
    if image.isNull():
        raise ValueError("the image is empty")
    has_alpha = image.hasAlphaChannel()
    fmt = QImage.Format.Format_RGBA8888 if has_alpha else QImage.Format.Format_RGB888
    img = image.convertToFormat(fmt)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    channels = 4 if has_alpha else 3
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=bpl * h).reshape(h, bpl)
    pixels = buf[:, : w * channels].reshape(h, w, channels)
    # copies, never views: ``img`` is freed on return (a view of an opaque image whose rows are
    # exactly 3 * width bytes read freed memory: a pasted screenshot became garbage or crashed)
    rgb = pixels[:, :, :3].copy()
    alpha = None
    if has_alpha:
        alpha = pixels[:, :, 3].copy()
        if (alpha == 255).all():
            alpha = None
    return rgb, alpha


_F = QImage.Format
DEEP_FORMATS = frozenset(
    getattr(_F, name)
    for name in (
        "Format_Grayscale16",
        "Format_RGBX64",
        "Format_RGBA64",
        "Format_RGBA64_Premultiplied",
        "Format_BGR30",
        "Format_RGB30",
        "Format_A2BGR30_Premultiplied",
        "Format_A2RGB30_Premultiplied",
        "Format_RGBX16FPx4",
        "Format_RGBA16FPx4",
        "Format_RGBA16FPx4_Premultiplied",
        "Format_RGBX32FPx4",
        "Format_RGBA32FPx4",
        "Format_RGBA32FPx4_Premultiplied",
    )
    if hasattr(_F, name)
)
"""QImage formats with more than 8 bits per channel (what :func:`to_rgb_alpha` reduces to 8)."""


def is_deep(image: QImage) -> bool:
    """Whether ``image`` has more than 8 bits per channel."""
    return image.format() in DEEP_FORMATS


def from_rgb(array: np.ndarray) -> QImage:
    """A QImage that owns a copy of an RGB array."""
    return wrap_rgb(np.ascontiguousarray(array)).copy()


def colour_profile(image: QImage) -> bytes | None:
    """The ICC profile of the colour space ``image`` came with (a Display P3 screenshot), None for
    sRGB or none: a pasted picture lost it, and was saved as sRGB."""
    space = image.colorSpace()
    if not space.isValid() or space == QColorSpace(QColorSpace.NamedColorSpace.SRgb):
        return None
    return bytes(space.iccProfile()) or None
