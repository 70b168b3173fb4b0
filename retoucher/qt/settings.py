"""Typed access to the app's preferences, stored with ``QSettings``.

Tests and scripts pass their own ``QSettings`` (an INI file in a temporary folder) so that they
never touch the user's real preferences.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

from PySide6.QtCore import QSettings
from PySide6.QtGui import QColor

from engine.mirror_pass import MIRROR
from engine.texture_strength import check_texture

from ..damage import DEFAULT_DILATE
from ..damage_review import MAX_DAMAGE_GROW
from .canvas_items import OVERLAY_RGBA

ORGANIZATION = "Retoucher"
APPLICATION = "Retoucher"
DEVICES = ("auto", "cpu", "cuda")
MAX_RECENT = 10
MIN_BRUSH_SIZE, MAX_BRUSH_SIZE, DEFAULT_BRUSH_SIZE = 1, 1000, 40  # brush diameter, image pixels
MIN_JPEG_QUALITY, MAX_JPEG_QUALITY, DEFAULT_JPEG_QUALITY = 1, 100, 95
MIN_MASK_STEP, MAX_MASK_STEP, DEFAULT_MASK_STEP = 1, 100, 2  # grow / shrink the mask by, pixels
DEFAULT_OVERLAY_COLOUR = QColor(*OVERLAY_RGBA[:3]).name()  # the hole overlay's (translucency fixed)


def _storable_path(path: str) -> str:
    """``path`` as QSettings can keep it: as it is, or where it is not text (a Linux file name in
    another encoding than UTF-8: Python's str holds its bytes as surrogates, which QSettings
    drops) its ``file:`` URI, every byte kept."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return Path(path).as_uri()
        except (UnicodeEncodeError, ValueError):  # Windows: a name that is not UTF-16 either
            return path
    return path


def _stored_path(value: str) -> str | None:
    """The path :func:`_storable_path` stored (None: a URI that is not a local file's)."""
    if not value.startswith("file:"):  # a stored path is absolute: "/..." or "C:\\..."
        return value
    parsed = urlsplit(value)
    if parsed.netloc not in ("", "localhost"):
        return None
    return os.fsdecode(unquote_to_bytes(parsed.path))


TEXTURE_KEY = "engine/texture_strength"
LEGACY_TEXTURE_KEY = "engine/texture"  # written by versions before a model named its own strength


def _texture_or_none(value: object) -> float | None:
    """A stored strength, or None when it is absent, empty or not a usable strength."""
    if value is None or value == "":
        return None
    try:
        return check_texture(float(value))
    except (TypeError, ValueError):
        return None


def clamp_brush_size(diameter: float) -> int:
    """A brush diameter within the sizes the app offers."""
    return int(min(max(diameter, MIN_BRUSH_SIZE), MAX_BRUSH_SIZE))


class Settings:
    """Device, weights file, texture strength, the mirrored pass, JPEG quality (or the
    original's), default brush size, what the wheel does, the mask tools' step and overlay
    colour, Find Damage's sensitivity and grow, and the recent-files list."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings if qsettings is not None else QSettings(ORGANIZATION, APPLICATION)

    @classmethod
    def from_file(cls, path: str | Path) -> Settings:
        return cls(QSettings(str(path), QSettings.Format.IniFormat))

    def _int(self, key: str, default: int, lo: int, hi: int) -> int:
        try:
            value = int(self.q.value(key, default))
        except (TypeError, ValueError):
            return default
        return min(max(value, lo), hi)

    def _bool(self, key: str, default: bool) -> bool:
        value = self.q.value(key, default)
        if isinstance(value, str):  # INI files give strings back
            return value.strip().lower() not in ("false", "0", "no", "off", "")
        return bool(value)

    # ------------------------------------------------------------------ engine
    @property
    def device(self) -> str:
        value = str(self.q.value("engine/device", "auto"))
        return value if value in DEVICES else "auto"

    @device.setter
    def device(self, value: str) -> None:
        if value not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, not {value!r}")
        self.q.setValue("engine/device", value)

    @property
    def weights(self) -> str:
        """A weights file path, or "" for the bundled default model."""
        return str(self.q.value("engine/weights", "") or "")

    @weights.setter
    def weights(self, value: str | Path | None) -> None:
        self.q.setValue("engine/weights", str(value) if value else "")

    @property
    def texture(self) -> float | None:
        """How much of the photo's texture, synthesised from around the hole, a fill gets
        (:mod:`engine.texture_strength`: 0 = the model's fill alone, 1 = as strong as around
        the hole); None (unset or unreadable): the model's own, which its weight file names.

        Before models named their own strength, every OK in Preferences stored the strength under
        ``engine/texture``, 0 (the default then) included: a stored 0 there cannot be told from
        "never chosen" and reads as unset, so that those users get their model's own; another
        strength stored there stays the user's choice until a new one is set."""
        if self.q.contains(TEXTURE_KEY):
            return _texture_or_none(self.q.value(TEXTURE_KEY))
        legacy = _texture_or_none(self.q.value(LEGACY_TEXTURE_KEY))
        return legacy if legacy else None

    @texture.setter
    def texture(self, value: float | None) -> None:
        self.q.remove(LEGACY_TEXTURE_KEY)
        if value is None:
            self.q.remove(TEXTURE_KEY)
        else:
            self.q.setValue(TEXTURE_KEY, check_texture(value))

    @property
    def mirror(self) -> bool:
        """Each fill also runs the network on the mirror image of the hole's surroundings and
        averages the two fills (:class:`engine.Inpainter`'s ``mirror``: a little better, twice
        the network's time); by default as :data:`engine.mirror_pass.MIRROR`."""
        return self._bool("engine/mirror", MIRROR)

    @mirror.setter
    def mirror(self, value: bool) -> None:
        self.q.setValue("engine/mirror", bool(value))

    # ------------------------------------------------------------------ saving and painting
    @property
    def jpeg_quality(self) -> int:
        return self._int("save/jpeg_quality", DEFAULT_JPEG_QUALITY, MIN_JPEG_QUALITY, MAX_JPEG_QUALITY)

    @jpeg_quality.setter
    def jpeg_quality(self, value: int) -> None:
        self.q.setValue("save/jpeg_quality", int(min(max(value, MIN_JPEG_QUALITY), MAX_JPEG_QUALITY)))

    @property
    def jpeg_keep_original(self) -> bool:
        """Save a photo read from a JPEG with the original's compression (quantisation and
        chroma subsampling) instead of :attr:`jpeg_quality`."""
        return self._bool("save/jpeg_keep_original", True)

    @jpeg_keep_original.setter
    def jpeg_keep_original(self, value: bool) -> None:
        self.q.setValue("save/jpeg_keep_original", bool(value))

    @property
    def brush_size(self) -> int:
        return self._int("paint/brush_size", DEFAULT_BRUSH_SIZE, MIN_BRUSH_SIZE, MAX_BRUSH_SIZE)

    @brush_size.setter
    def brush_size(self, value: int) -> None:
        self.q.setValue("paint/brush_size", clamp_brush_size(value))

    # ------------------------------------------------------------------ navigation
    @property
    def wheel_zooms(self) -> bool:
        """The mouse wheel zooms (about the pointer) instead of scrolling; off by default."""
        return self._bool("view/wheel_zooms", False)

    @wheel_zooms.setter
    def wheel_zooms(self, value: bool) -> None:
        self.q.setValue("view/wheel_zooms", bool(value))

    # ------------------------------------------------------------------ mask tools and overlay
    @property
    def mask_step(self) -> int:
        """How many pixels Grow Mask and Shrink Mask move the hole's edge."""
        return self._int("mask/step", DEFAULT_MASK_STEP, MIN_MASK_STEP, MAX_MASK_STEP)

    @mask_step.setter
    def mask_step(self, value: int) -> None:
        self.q.setValue("mask/step", int(min(max(value, MIN_MASK_STEP), MAX_MASK_STEP)))

    @property
    def overlay_colour(self) -> QColor:
        """The colour the hole is shown in (opaque; the overlay adds its translucency)."""
        colour = QColor(str(self.q.value("view/overlay_colour", DEFAULT_OVERLAY_COLOUR)))
        return colour if colour.isValid() else QColor(DEFAULT_OVERLAY_COLOUR)

    @overlay_colour.setter
    def overlay_colour(self, value: QColor | str) -> None:
        colour = QColor(value)
        if not colour.isValid():
            raise ValueError(f"not a colour: {value!r}")
        self.q.setValue("view/overlay_colour", colour.name())

    # ------------------------------------------------------------------ Find Damage
    @property
    def damage_threshold(self) -> float | None:
        """The detector threshold the user chose last (the sensitivity slider), or None: the
        detector's calibrated default."""
        try:
            value = float(self.q.value("damage/threshold", "") or "nan")
        except (TypeError, ValueError):
            return None
        return value if 0.0 < value < 1.0 else None

    @damage_threshold.setter
    def damage_threshold(self, value: float | None) -> None:
        self.q.setValue("damage/threshold", "" if value is None else float(value))

    @property
    def damage_grow(self) -> int:
        """How many pixels Find Damage grows what it finds by."""
        return self._int("damage/grow", DEFAULT_DILATE, 0, MAX_DAMAGE_GROW)

    @damage_grow.setter
    def damage_grow(self, value: int) -> None:
        self.q.setValue("damage/grow", int(min(max(value, 0), MAX_DAMAGE_GROW)))

    # ------------------------------------------------------------------ recent files
    @property
    def recent_files(self) -> list[str]:
        value = self.q.value("files/recent", [])
        if isinstance(value, str):  # QSettings returns a lone string for a 1-item list
            value = [value]
        if not isinstance(value, (list, tuple)):  # another type (a registry's or plist's): none
            return []
        files = (_stored_path(v) for v in value if isinstance(v, str) and v)
        return [f for f in files if f][:MAX_RECENT]

    def add_recent_file(self, path: str | Path) -> None:
        p = str(Path(path).resolve())
        self.q.sync()  # another window's additions first: its last writer's list won whole
        files = [f for f in self.recent_files if f != p]
        self._set_recent_files([p, *files])

    def remove_recent_file(self, path: str | Path) -> None:
        self.q.sync()
        self._set_recent_files([f for f in self.recent_files if f != str(path)])

    def _set_recent_files(self, files: list[str]) -> None:
        self.q.setValue("files/recent", [_storable_path(f) for f in files[:MAX_RECENT]])
        self.q.sync()  # at once, for the other windows

    def clear_recent_files(self) -> None:
        self.q.setValue("files/recent", [])
        self.q.sync()

    # ------------------------------------------------------------------ folders and window
    def value(self, key: str, default: object = None) -> object:
        return self.q.value(key, default)

    def flag(self, key: str, default: bool = False) -> bool:
        """A remembered on/off choice (INI files give it back as a string)."""
        return self._bool(key, default)

    def set_value(self, key: str, value: object) -> None:
        self.q.setValue(key, value)

    def sync(self) -> None:
        self.q.sync()

    def problem(self) -> str | None:
        """Why the settings are not kept (their file cannot be written, or read), after the last
        :meth:`sync`; None when they are. Every change then looked saved and was back to the old
        value at the next start, without a word. Qt keeps the first error it met for good, so
        the file is looked at again (a write that failed once, a disk full since freed: kept); a
        damaged line (a format error) is no problem: Qt writes the file anew."""
        if self.q.status() != QSettings.Status.AccessError:
            return None
        path = Path(self.q.fileName())
        folder = next((p for p in path.parents if p.is_dir()), path.parent)
        if os.access(path if path.exists() else folder, os.W_OK) and (
            not path.exists() or os.access(path, os.R_OK)
        ):
            return None
        return (
            f"The settings file {path} cannot be written or read: changes are not kept when Retoucher closes"
        )
