"""Fixtures shared by every test folder. Keep them small, generic and CPU-friendly."""

from __future__ import annotations

from pathlib import Path

import pytest

# Layout of the tiny random-weight U-Net used wherever a real model file is needed:
# 4 levels (inputs padded to multiples of 16), a few thousand parameters, milliseconds per image.
TINY_WIDTHS = (8, 16, 16, 16)
TINY_KERNELS = (7, 5, 3, 3)


def _load_script(folder: str, name: str):
    """The script ``<folder>/<name>.py`` of this repository imported as a module."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / folder / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{folder}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def benchmark_script():
    """``benchmark_script(name)``: the script ``benchmarks/<name>.py`` imported as a module (its
    functions are tested where a wrong one would make its figures measure something else)."""
    return lambda name: _load_script("benchmarks", name)


@pytest.fixture(scope="session")
def repo_script():
    """``repo_script(name)``: the script ``scripts/<name>.py`` imported as a module."""
    return lambda name: _load_script("scripts", name)


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


@pytest.fixture(scope="session")
def tiny_textured_weights(tmp_path_factory, tiny_weights) -> Path:
    """The tiny model of ``tiny_weights`` (the same tensors) in a file that names its own texture
    strength, 1, as a shipped model names the strength it was evaluated at."""
    from engine.weights import load_weights, save_weights

    model, _ = load_weights(tiny_weights)
    path = tmp_path_factory.mktemp("weights") / "tiny-textured.safetensors"
    return save_weights(path, model, {"note": "random, own texture 1"}, name="tiny-textured", texture=1.0)


@pytest.fixture(scope="session")
def tiny_damage_weights(tmp_path_factory) -> Path:
    """Path of a tiny randomly initialised damage detector (DamageNet width 4, seed 0), calibrated
    threshold 0.5, named ``tiny-damage``."""
    import torch

    from engine.damage import DamageNet, DamageNetConfig, save_damage_weights

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny-damage.safetensors"
    net = DamageNet(DamageNetConfig(width=4))
    return save_damage_weights(path, net, {"threshold": 0.5, "note": "random, for tests"}, name="tiny-damage")


@pytest.fixture()
def selftest_resources(tmp_path, tiny_weights, tiny_damage_weights, monkeypatch) -> Path:
    """A folder laid out like resources/ (weights/default.safetensors, weights/damage.safetensors,
    a 100x72 sample.jpg), made the bundled one through RETOUCHER_RESOURCES."""
    import shutil

    import numpy as np
    from PIL import Image

    folder = tmp_path / "resources"
    (folder / "weights").mkdir(parents=True)
    shutil.copy(tiny_weights, folder / "weights" / "default.safetensors")
    shutil.copy(tiny_damage_weights, folder / "weights" / "damage.safetensors")
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:72, 0:100]
    photo = np.stack([x * 2.5, y * 3.5, (x + y) * 1.5], -1) + rng.normal(0, 10, (72, 100, 3))
    Image.fromarray(photo.clip(0, 255).astype(np.uint8)).save(folder / "sample.jpg", quality=90)
    monkeypatch.setenv("RETOUCHER_RESOURCES", str(folder))
    return folder
