"""Instant stand-ins for the engine in the GUI tests (shared by the file and batch tests)."""

from __future__ import annotations


class FlatFill:
    """Instant stand-in for the Inpainter: the hole becomes mid-grey."""

    name = "flat"
    device_name = "CPU"
    info = None

    def __call__(self, image, hole, *, cancel=None, progress=None):
        out = image.copy()
        out[hole] = 128
        return out
