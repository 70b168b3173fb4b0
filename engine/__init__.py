"""Retoucher's inference engine: partial-convolution U-Net, weight files, image I/O and the
:class:`Inpainter`. Imports torch, numpy and Pillow; never Qt, never ``retoucher`` or ``trainer``.

Conventions: images are ``uint8 HxWx3 RGB`` arrays, hole masks ``bool HxW`` with True = hole.
"""

from .inpainter import InpaintCancelled, Inpainter, NothingToFillError, select_device
from .layers import PartialConv2d
from .unet import MODEL_PRESETS, PConvUNet, UNetConfig, create_model
from .weights import (
    WeightsError,
    WeightsInfo,
    default_weights_path,
    load_weights,
    read_weights_info,
    resources_dir,
    save_weights,
)

__all__ = [
    "Inpainter",
    "InpaintCancelled",
    "NothingToFillError",
    "select_device",
    "PartialConv2d",
    "PConvUNet",
    "UNetConfig",
    "MODEL_PRESETS",
    "create_model",
    "WeightsError",
    "WeightsInfo",
    "default_weights_path",
    "load_weights",
    "read_weights_info",
    "resources_dir",
    "save_weights",
]
