"""The PyInstaller bundle, built and run for real (marked ``packaging``; about two minutes).

The module's fixture builds dist/Retoucher/ into a temp folder with ``packaging/build.sh`` (the
build venv build/package-venv is created on first use and reused after) from a copy of
resources/ in which a missing default model or damage detector is replaced by a tiny random one
and a missing sample photo by a generated one. With ``RETOUCHER_BUNDLE=/path/to/dist/Retoucher`` it tests that
bundle instead of building one. When the build tools can't be installed (build.sh exits 3: no
python3.11, no venv module, a package not reachable) the tests skip.

Every run of the bundle gets an environment with PATH set to an empty folder (no Python, nor
anything else, on it), no VIRTUAL_ENV/PYTHONPATH/PYTHONHOME, and its own HOME.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.engine.jpeg_photos import scan_damaged

pytestmark = [pytest.mark.packaging, pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "packaging" / "build.sh"
EXE = "Retoucher.exe" if sys.platform == "win32" else "Retoucher"
ONE_GB = 1 << 30


class Bundle:
    def __init__(self, folder: Path, resources: Path | None, workdir: Path | None, tmp: Path):
        self.folder = folder
        self.exe = folder / EXE
        self.internal = folder / "_internal"
        self.resources = resources  # what was bundled, when this session built it
        self.workdir = workdir
        self.tmp = tmp

    def env(self, **extra: str) -> dict[str, str]:
        empty_bin = self.tmp / "empty-bin"
        home = self.tmp / "home"
        empty_bin.mkdir(exist_ok=True)
        home.mkdir(exist_ok=True)
        env = {
            "PATH": str(empty_bin),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "QT_QPA_PLATFORM": "offscreen",
            "TMPDIR": str(self.tmp),
        }
        if sys.platform == "win32":  # Windows needs its system folders
            env.update({k: os.environ[k] for k in ("SYSTEMROOT", "WINDIR") if k in os.environ})
        env.update(extra)
        return env

    def run(self, *args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.exe), *args],
            capture_output=True,
            text=True,
            env=self.env(**extra),
            cwd=self.tmp,
            timeout=timeout,
        )


def _bundle_resources(dest: Path, tmp: Path) -> Path:
    """A copy of resources/ with a model and a sample photo in it, whatever the repo holds now."""
    src = ROOT / "resources"
    if src.is_dir():
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".*", "*.tmp"))
    (dest / "weights").mkdir(parents=True, exist_ok=True)
    weights = dest / "weights" / "default.safetensors"
    if not weights.is_file():
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, torch; from engine.unet import PConvUNet, UNetConfig;"
                "from engine.weights import save_weights; torch.manual_seed(0);"
                "m = PConvUNet(UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3))).eval();"
                "save_weights(sys.argv[1], m, {'note': 'random, packaging test'}, name='tiny-random')",
                str(weights),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
    detector = dest / "weights" / "damage.safetensors"
    if not detector.is_file():
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, torch; from engine.damage import DamageNet, DamageNetConfig, save_damage_weights;"
                "torch.manual_seed(0);"
                "save_damage_weights(sys.argv[1], DamageNet(DamageNetConfig(width=4)),"
                "{'threshold': 0.5, 'note': 'random, packaging test'}, name='tiny-damage')",
                str(detector),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
    if not (dest / "sample.jpg").is_file():
        rng = np.random.default_rng(0)
        y, x = np.mgrid[0:192, 0:256]
        photo = np.stack([x, y * 1.3, (x + y) * 0.6], -1) + rng.normal(0, 12, (192, 256, 3))
        Image.fromarray(photo.clip(0, 255).astype(np.uint8)).save(dest / "sample.jpg", quality=90)
    return dest


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Bundle:
    tmp = tmp_path_factory.mktemp("bundle")
    given = os.environ.get("RETOUCHER_BUNDLE")
    if given:
        folder = Path(given)
        if folder.is_file():
            folder = folder.parent
        assert (folder / EXE).is_file(), f"RETOUCHER_BUNDLE={given}: no {EXE} there"
        return Bundle(folder, None, None, tmp)
    if sys.platform == "win32" or not shutil.which("bash"):
        pytest.skip("the bundle test builds with packaging/build.sh, which needs bash")

    started = time.monotonic()
    venv = subprocess.run(
        ["bash", str(BUILD), "--venv-only"], capture_output=True, text=True, cwd=ROOT, timeout=1200
    )
    if venv.returncode == 3:
        pytest.skip(
            "build tools could not be installed: "
            + (venv.stderr.strip().splitlines() or ["(no message)"])[-1]
        )
    assert venv.returncode == 0, venv.stdout[-3000:] + venv.stderr[-3000:]
    venv_s = time.monotonic() - started

    resources = _bundle_resources(tmp / "resources", tmp)
    dist, work = tmp / "dist", tmp / "work"
    build = subprocess.run(
        [
            "bash",
            str(BUILD),
            "--no-check",
            "--dist",
            str(dist),
            "--work",
            str(work),
            "--resources",
            str(resources),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1500,
    )
    assert build.returncode == 0, build.stdout[-5000:] + build.stderr[-5000:]
    print(f"\nbundle: build venv {venv_s:.0f} s, whole build {time.monotonic() - started:.0f} s")
    return Bundle(dist / "Retoucher", resources, work / "retoucher", tmp)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def test_bundle_holds_the_app_the_model_and_the_qt_plugins(bundle):
    assert bundle.exe.is_file() and os.access(bundle.exe, os.X_OK)
    res = bundle.internal / "resources"
    weights = ("default.safetensors", "damage.safetensors")
    assert sorted(p.name for p in (res / "weights").iterdir()) == sorted(weights)  # nothing stray
    assert (res / "sample.jpg").is_file()
    if bundle.resources is not None:  # exactly the weights that were bundled
        for name in weights:
            assert (res / "weights" / name).read_bytes() == (bundle.resources / "weights" / name).read_bytes()
    plugins = bundle.internal / "PySide6" / "Qt" / "plugins" / "platforms"
    names = {p.name for p in plugins.iterdir()}
    assert any("qoffscreen" in n for n in names), names
    if sys.platform.startswith("linux"):
        assert any("qxcb" in n for n in names), names
    for unwanted in (
        "torchvision",
        "tensorboard",
        "trainer",
        "pytest",
        "torch/include",
        "torch/test",
        "PySide6/Qt/qml",
    ):
        assert not (bundle.internal / unwanted).exists(), f"{unwanted} should not be bundled"
    size = _size(bundle.folder)
    print(f"\nbundle size: {size / 2**20:.0f} MiB")
    assert size < ONE_GB


def test_bundle_leaves_out_the_trainer_and_unused_modules(bundle):
    if bundle.workdir is None:
        pytest.skip("the module list is only known for a bundle this test built")
    toc = ast.literal_eval((bundle.workdir / "PYZ-00.toc").read_text())[1]
    modules = {entry[0] for entry in toc}
    assert {
        "retoucher.__main__",
        "retoucher.selftest",
        "retoucher.batch",
        "retoucher.batch.detect_cli",
        "retoucher.damage",
        "engine.damage",
        "retoucher.qt.app",
        "retoucher.qt.main_window",
        "engine.inpainter",
        "engine.imageio",
    } <= modules
    tops = {name.split(".")[0] for name in modules}
    assert not tops & {
        "trainer",
        "torchvision",
        "tensorboard",
        "pytest",
        "tests",
        "sympy",
        "matplotlib",
        "tkinter",
        "cv2",
    }
    qt = {name for name in modules if name.startswith("PySide6.")}
    assert (
        not {
            "PySide6.QtNetwork",
            "PySide6.QtQml",
            "PySide6.QtQuick",
            "PySide6.QtWebEngineCore",
            "PySide6.QtMultimedia",
        }
        & qt
    )


def test_version_from_the_bundle(bundle):
    proc = bundle.run("--version", timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert lines[0] == f"retoucher {declared}"
    assert lines[1].startswith("model: ") and "no model" not in lines[1]
    assert lines[2].startswith("damage detector: ") and "no damage detector" not in lines[2]
    if bundle.resources is not None:
        from engine.weights import read_weights_info

        name = read_weights_info(bundle.resources / "weights" / "default.safetensors").name
        assert lines[1].startswith(f"model: {name} (")
    assert str(bundle.internal / "resources") in lines[1]


def test_self_test_from_the_bundle_without_python_on_path(bundle):
    proc = bundle.run("--self-test", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert str(bundle.internal / "resources") in proc.stdout
    assert "pixels outside the hole unchanged: ok" in proc.stdout
    assert "(damage.safetensors) loaded on" in proc.stdout
    assert "probability float32 within [0, 1], mask bool" in proc.stdout
    assert "self-test passed" in proc.stdout
    print("\n" + proc.stdout)


def test_self_test_from_the_bundle_fails_clearly_without_its_model(bundle, tmp_path):
    empty = tmp_path / "resources"
    (empty / "weights").mkdir(parents=True)
    proc = bundle.run("--self-test", timeout=300, RETOUCHER_RESOURCES=str(empty))
    assert proc.returncode == 1
    assert "self-test FAILED: no model bundled" in proc.stderr


def test_self_test_from_the_bundle_fails_clearly_without_its_detector(bundle, tmp_path):
    folder = tmp_path / "resources"
    shutil.copytree(bundle.internal / "resources", folder)
    (folder / "weights" / "damage.safetensors").unlink()
    proc = bundle.run("--self-test", timeout=300, RETOUCHER_RESOURCES=str(folder))
    assert proc.returncode == 1
    assert "self-test FAILED: no damage detector bundled" in proc.stderr
    assert str(folder / "weights" / "damage.safetensors") in proc.stderr


def test_batch_from_the_bundle(bundle, tmp_path):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    rng = np.random.default_rng(3)
    photos = {}
    for i, (h, w) in enumerate([(64, 80), (96, 64)]):
        photos[f"p{i}.png"] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(photos[f"p{i}.png"]).save(inputs / f"p{i}.png")
    proc = bundle.run(
        "batch", str(inputs), str(outputs), "--center-hole", "16", "--device", "cpu", timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name, original in photos.items():
        result = np.asarray(Image.open(outputs / name).convert("RGB"))
        assert result.shape == original.shape
        h, w = original.shape[:2]
        hole = np.zeros((h, w), bool)
        hole[(h - 16) // 2 : (h - 16) // 2 + 16, (w - 16) // 2 : (w - 16) // 2 + 16] = True
        assert np.array_equal(result[~hole], original[~hole]), name
        assert np.any(result[hole] != original[hole]), name


def test_batch_from_the_bundle_keeps_a_jpeg_s_unchanged_blocks_and_finds_damaged_data(bundle, tmp_path):
    """The bundle carries jpeglib (JPEG saves that re-encode only the changed blocks, imported
    inside the function that uses it, where the bundle's analysis would not see it) and
    simplejpeg (damaged JPEG data found on load, an optional import)."""
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    y, x = np.mgrid[0:128, 0:128]
    picture = np.dstack([x * 2, y * 2, (x + y)]).astype(np.uint8)
    Image.fromarray(picture).save(inputs / "plain.jpg", quality=90)
    (inputs / "damaged.jpg").write_bytes(scan_damaged((inputs / "plain.jpg").read_bytes(), at=0.5))
    proc = bundle.run(
        "batch", str(inputs), str(outputs), "--rect", "8,8,16,16", "--device", "cpu", timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "re-encoded" not in proc.stderr, proc.stderr  # the blocks were kept, not a fallback
    assert "damaged.jpg: the JPEG's compressed data is damaged" in proc.stderr, proc.stderr
    before, after = (np.asarray(Image.open(d / "plain.jpg")) for d in (inputs, outputs))
    assert np.array_equal(before[40:, 40:], after[40:, 40:])  # far from the hole: the same data


def test_detect_from_the_bundle(bundle, tmp_path):
    """retoucher detect from the bundle's entry point with the bundled detector: a mask of each
    photo's size, 8-bit grey with only black and white."""
    inputs, masks = tmp_path / "in", tmp_path / "masks"
    inputs.mkdir()
    rng = np.random.default_rng(4)
    sizes = {"p0.png": (64, 80), "p1.jpg": (96, 64)}
    for name, (h, w) in sizes.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(inputs / name)
    proc = bundle.run("detect", str(inputs), str(masks), "--device", "cpu", "--no-progress", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "photos 2: masks written 2, skipped 0, failed 0;" in proc.stdout
    for name, (h, w) in sizes.items():
        with Image.open(masks / (Path(name).stem + ".png")) as im:
            assert im.mode == "L" and im.size == (w, h), name
            assert set(np.unique(np.asarray(im))) <= {0, 255}, name


def test_app_starts_headless_from_the_bundle(bundle):
    """The GUI with the offscreen platform plugin: it must come up and keep running (a missing
    Qt plugin or module makes it exit at once with an error)."""
    proc = subprocess.Popen(
        [str(bundle.exe)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=bundle.env(),
        cwd=bundle.tmp,
    )
    try:
        rc = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        rc = None
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    assert rc is None, f"the app exited with {rc}: {out}{err}"
    assert "Traceback" not in err, err
