"""The sample photo the app opens on first launch: ``resources/sample.jpg``."""

from __future__ import annotations

import os
from pathlib import Path

from engine.weight_header import resources_dir

__all__ = ["SAMPLE_NAME", "sample_photo"]

SAMPLE_NAME = "sample.jpg"


def sample_photo(resources: str | os.PathLike[str] | None = None) -> Path:
    """The sample photo in ``resources`` (default: the bundled ``resources/`` folder)."""
    return (Path(resources) if resources is not None else resources_dir()) / SAMPLE_NAME
