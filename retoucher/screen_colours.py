"""A photo's colours as a screen shows them: the numbers of a photo whose colour profile is not
sRGB (Adobe RGB, ProPhoto, Display P3, a linear or gamma 1.8 grey) converted to sRGB for display,
as colour-managed viewers do. Without it the canvas drew the file's numbers as sRGB: an Adobe RGB
photo looked dull (12 levels off on average, up to 144), a ProPhoto one 28 levels off, a linear
grey's mid-grey 128 dark where a viewer shows 188; the fill was judged on wrong colours.

Only what is shown changes: the document, the fill and the saved file keep the photo's own
numbers and profile. The screen's own profile is not read: it is taken to be sRGB, as most are
(and as Qt draws). A photo without a profile, with an sRGB one, or with one LittleCMS cannot
read is shown as it is (None). Conversions use relative colorimetric intent with black-point
compensation, the usual choice for a display.
"""

from __future__ import annotations

import io
import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, ImageCms

from engine.metadata import PhotoMetadata

__all__ = ["ScreenColours", "screen_colours"]

log = logging.getLogger(__name__)

_BAND_ROWS = 512  # rows converted at a time, two bands at once (LittleCMS lets go of the GIL)


class ScreenColours:
    """Converts parts of a photo (uint8 hxwx3) from its profile to sRGB: ``colours(rgb)``."""

    def __init__(self, profile: ImageCms.ImageCmsProfile, grey: bool) -> None:
        self.name = ImageCms.getProfileDescription(profile).strip() or "unnamed profile"
        self._transform = ImageCms.buildTransform(
            profile,
            ImageCms.createProfile("sRGB"),
            "L" if grey else "RGB",
            "RGB",
            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
        )

        # a Gray profile's tone curve, level by level, for each channel: a fill that added colour
        # to a grey photo showed (200, 40, 40) as the grey of its red
        self._curve: np.ndarray | None = None
        if grey:
            levels = Image.fromarray(np.arange(256, dtype=np.uint8)[None, :], "L")
            self._curve = np.asarray(ImageCms.applyTransform(levels, self._transform))[0, :, 0].copy()

    def is_identity(self) -> bool:
        """It changes no colour by more than a level: the profile is sRGB's, whatever its name
        (cameras write several), or a grey one that matches its curve."""
        levels = np.arange(0, 256, 15, dtype=np.uint8)
        grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(1, -1, 3)
        return int(np.abs(self(grid).astype(np.int16) - grid).max()) <= 1

    def _band(self, rgb: np.ndarray) -> np.ndarray:
        source = Image.fromarray(np.ascontiguousarray(rgb))
        return np.array(ImageCms.applyTransform(source, self._transform))  # writable: views keep it

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if self._curve is not None:
            return self._curve[rgb]
        if rgb.size == 0:
            return rgb.copy()
        if rgb.shape[0] <= _BAND_ROWS:
            return self._band(rgb)
        out = np.empty_like(rgb)
        starts = range(0, rgb.shape[0], _BAND_ROWS)

        def convert(y: int) -> None:
            out[y : y + _BAND_ROWS] = self._band(rgb[y : y + _BAND_ROWS])

        with ThreadPoolExecutor(2) as pool:  # 0.8 s -> 0.45 s at 24 MP on two cores
            list(pool.map(convert, starts))
        return out


def screen_colours(metadata: PhotoMetadata) -> ScreenColours | None:
    """The conversion a photo with ``metadata`` needs on an sRGB screen; None: none (no profile,
    an sRGB one, or one that cannot be read, which is logged)."""
    grey = metadata.icc_profile is None and metadata.grey_icc_profile is not None
    data = metadata.grey_icc_profile if grey else metadata.icc_profile
    if not data:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(bytes(data)))
        space = profile.profile.xcolor_space.strip()
        if space != ("GRAY" if grey else "RGB"):
            return None  # a CMYK or Lab photo was converted to sRGB as it was read
        colours = ScreenColours(profile, grey)
        if colours.is_identity():
            return None  # sRGB under any name: the numbers are shown exactly as they are
        return colours
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError) as exc:
        log.warning("the photo's colour profile cannot be used for display (%s): shown as sRGB", exc)
        return None
