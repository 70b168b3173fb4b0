"""Fixtures shared by every test folder. Keep them small, generic and CPU-friendly."""

from __future__ import annotations

from pathlib import Path

import pytest

# Layout of the tiny random-weight U-Net used wherever a real model file is needed:
# 4 levels (inputs padded to multiples of 16), a few thousand parameters, milliseconds per image.
TINY_WIDTHS = (8, 16, 16, 16)
TINY_KERNELS = (7, 5, 3, 3)


@pytest.fixture(scope="session")
def tiny_config():
    from engine.unet import UNetConfig

    return UNetConfig(widths=TINY_WIDTHS, kernels=TINY_KERNELS, image_size=64)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory, tiny_config) -> Path:
    """Path of a safetensors weight file holding a randomly initialised tiny model (seed 0)."""
    import torch

    from engine.unet import PConvUNet
    from engine.weights import save_weights

    torch.manual_seed(0)
    model = PConvUNet(tiny_config).eval()
    path = tmp_path_factory.mktemp("weights") / "tiny-random.safetensors"
    save_weights(path, model, {"note": "random initialisation, for tests"}, name="tiny-random")
    return path
