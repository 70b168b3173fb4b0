"""Retoucher's inference engine: partial-convolution U-Net, weight files, image I/O and the
:class:`Inpainter`. Imports torch, numpy and Pillow; never Qt, never ``retoucher`` or ``trainer``.

Conventions: images are ``uint8 HxWx3 RGB`` arrays, hole masks ``bool HxW`` with True = hole.

The names below load their module (and torch) on first use, so that the torch-free modules
(``engine.formats``, ``engine.torchrun``, ``engine.atomic``, ``engine.texture_strength``,
``engine.mirror_pass``, ``engine.unet_config``, ``engine.weight_header``: a weight file's header)
can be imported without torch: a command line checks its arguments and torchrun's variables before
paying for it.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the module that defines it
_HOMES = {
    "DamageDetector": "damage",
    "DamageMap": "damage",
    "DamageNet": "damage",
    "DamageNetConfig": "damage",
    "DetectionCancelled": "damage",
    "default_damage_weights_path": "weight_header",
    "load_damage_weights": "damage",
    "read_damage_info": "damage",
    "save_damage_weights": "damage",
    "Inpainter": "inpainter",
    "InpaintCancelled": "inpainter",
    "NothingToFillError": "inpainter",
    "select_device": "inpainter",
    "DeviceError": "distributed",
    "PartialConv2d": "layers",
    "PConvUNet": "unet",
    "UNetConfig": "unet_config",
    "MODEL_PRESETS": "unet_config",
    "create_model": "unet",
    "WeightsError": "weight_header",
    "WeightsInfo": "weight_header",
    "default_weights_path": "weight_header",
    "load_weights": "weights",
    "read_weights_info": "weight_header",
    "resources_dir": "weight_header",
    "save_weights": "weights",
}

__all__ = list(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
