"""The installed package, not the source tree: ``pip install .`` (or pipx) must give an app with
its model, its damage detector and its sample photo. The tests run from the checkout (pytest's
``pythonpath``), which always has ``resources/``; a wheel built without them installed an app
that said "no model bundled" and a batch that failed. Built from a copy of the sources, without
build isolation (no download), about 15 s."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("engine", "retoucher", "trainer", "resources", "pyproject.toml", "README.md")
BUNDLED = (
    "resources/weights/default.safetensors",
    "resources/weights/damage.safetensors",
    "resources/sample.jpg",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    for name in BUNDLED:
        if not (ROOT / name).is_file():
            pytest.skip(f"{name} is not in this checkout")
    try:  # built without isolation: this environment's setuptools (make setup's comes with tensorboard)
        setuptools = int(importlib.metadata.version("setuptools").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        setuptools = 0
    if setuptools < 77:
        pytest.skip("building the wheel needs setuptools 77 or newer in this environment")
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("wheel")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(out),
        ".",
    ]
    done = subprocess.run(cmd, cwd=src, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (built,) = out.glob("retoucher-*.whl")
    return built


def test_the_wheel_carries_the_model_the_detector_and_the_sample_photo(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in BUNDLED:
        assert name in names, name
        assert zipfile.ZipFile(wheel).getinfo(name).file_size == (ROOT / name).stat().st_size
    assert not any(n.startswith(("tests/", "benchmarks/", "scripts/")) for n in names)


def test_an_installed_copy_finds_them_from_another_folder(wheel, tmp_path):
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    env = {k: v for k, v in os.environ.items() if k != "RETOUCHER_RESOURCES"}
    env["PYTHONPATH"] = str(site)  # ahead of the checkout's editable install
    probe = (
        "import engine, retoucher.bundled as b; "
        "from engine.weight_header import default_weights_path; "
        "from engine.damage import default_damage_weights_path; "
        "print(engine.__file__); "
        "print(default_weights_path().is_file(), default_damage_weights_path().is_file(), "
        "b.sample_photo().is_file())"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    where, found = done.stdout.strip().splitlines()
    assert Path(where).is_relative_to(site)  # the installed copy, not the checkout
    assert found == "True True True"
