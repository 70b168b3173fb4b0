"""Small synthetic data for the trainer tests: a CUB-layout folder with known boxes, a prepared
64 px set, a folder of masks, and a tiny trained checkpoint (all built in temp folders)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

WIDTHS = (8, 16, 16, 16)  # depth 4: 64 px images, a few thousand parameters


def torchrun_two(driver: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``driver`` run by torchrun as two local processes (gloo on the CPU), one thread each;
    fails the test unless both end well."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(driver),
        *args,
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


def smooth_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A photo-like image: low-frequency colour noise plus a bright disc."""
    small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)).copy()
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx, r = rng.integers(h // 4, 3 * h // 4), rng.integers(w // 4, 3 * w // 4), min(h, w) // 6
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 256, size=3)
    return img


@dataclass
class CubFixture:
    root: Path
    listed: int
    present: int
    missing: int
    corrupt: list[str]
    discarded: list[int]
    grayscale: list[int]
    species: dict[int, str]
    sizes: dict[int, tuple[int, int]] = field(default_factory=dict)
    boxes: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)
    square_box: int = 0  # an image whose box is square and inside: its crop is exactly the box


def make_cub(root: Path, per_species: int = 10, n_species: int = 3) -> CubFixture:
    """Official CUB layout. Per species: most photos are 120x90 with a box that fits; image 2 of
    each species has a box wider than the photo's short side (discarded); image 3 is missing;
    in species 1, image 4 is garbage bytes, image 5 a truncated JPEG, image 6 grayscale, and
    image 7 has a square box painted red on a blue photo."""
    rng = np.random.default_rng(0)
    images_dir = root / "images"
    lines = {k: [] for k in ("images", "boxes", "labels", "split", "classes")}
    fx = CubFixture(root, 0, 0, 0, [], [], [], {})
    image_id = 0
    for s in range(1, n_species + 1):
        species = f"{s:03d}.Bird_{s}"
        fx.species[s] = species
        lines["classes"].append(f"{s} {species}")
        (images_dir / species).mkdir(parents=True, exist_ok=True)
        for k in range(1, per_species + 1):
            image_id += 1
            rel = f"{species}/Bird_{s}_{k:04d}.jpg"
            w, h = 120, 90
            box = (float(rng.integers(0, 40)), float(rng.integers(0, 30)), 50.0, 40.0)
            if k == 2:
                box = (10.0, 5.0, 100.0, 60.0)  # 100 > 90: no square fits
                fx.discarded.append(image_id)
            lines["images"].append(f"{image_id} {rel}")
            lines["boxes"].append(f"{image_id} {box[0]} {box[1]} {box[2]} {box[3]}")
            lines["labels"].append(f"{image_id} {s}")
            lines["split"].append(f"{image_id} {k % 2}")
            fx.listed += 1
            fx.boxes[image_id] = box
            fx.sizes[image_id] = (w, h)
            path = images_dir / rel
            if k == 3:
                fx.missing += 1
                continue
            fx.present += 1
            if s == 1 and k == 4:
                path.write_bytes(b"this is not a JPEG file at all" * 10)
                fx.corrupt.append(rel)
                continue
            img = smooth_image(rng, h, w)
            if s == 1 and k == 7:
                box = (30.0, 20.0, 48.0, 48.0)
                lines["boxes"][-1] = f"{image_id} 30.0 20.0 48.0 48.0"
                fx.boxes[image_id] = box
                img[:] = (0, 0, 255)
                img[20:68, 30:78] = (255, 0, 0)
                fx.square_box = image_id
                Image.fromarray(img).save(path, format="PNG")  # lossless, named .jpg: Pillow sniffs
                continue
            if s == 1 and k == 5:
                Image.fromarray(img).save(path, quality=90)
                data = path.read_bytes()
                path.write_bytes(data[: len(data) // 2])
                fx.corrupt.append(rel)
                continue
            if s == 1 and k == 6:
                Image.fromarray(img).convert("L").save(path, quality=90)
                fx.grayscale.append(image_id)
                continue
            Image.fromarray(img).save(path, quality=90)
    names = {
        "images": "images.txt",
        "boxes": "bounding_boxes.txt",
        "labels": "image_class_labels.txt",
        "split": "train_test_split.txt",
        "classes": "classes.txt",
    }
    for key, name in names.items():
        (root / name).write_text("\n".join(lines[key]) + "\n")
    return fx


@pytest.fixture
def cub(tmp_path) -> CubFixture:
    return make_cub(tmp_path / "CUB_200_2011")


def make_photo_folder(
    root: Path, per_class: int = 12, classes: int = 2, size: tuple[int, int] = (80, 72)
) -> Path:
    rng = np.random.default_rng(1)
    for c in range(classes):
        d = root / f"class_{c}"
        d.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            Image.fromarray(smooth_image(rng, size[1], size[0])).save(d / f"p{k:02d}.png")
    return root


def make_mask_folder(root: Path, count: int = 12, size: int = 128) -> Path:
    """Masks with hole ratios spread over 5-55 % (white = hole)."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        m = np.zeros((size, size), np.uint8)
        ratio = 0.05 + 0.5 * i / max(1, count - 1)
        rows = int(round(ratio * size))
        m[:rows] = 255
        Image.fromarray(m).save(root / f"{i:05d}.png")
    return root


@pytest.fixture
def make_photos():
    """``make_photos(root, per_class=12, classes=2, size=(80, 72)) -> root``."""
    return make_photo_folder


@pytest.fixture
def make_masks():
    """``make_masks(root, count=12, size=128) -> root``."""
    return make_mask_folder


@pytest.fixture
def train_config():
    """``train_config(data, out, **overrides) -> TrainConfig`` of a tiny fast run."""
    return tiny_train_config


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    """A prepared 64 px data folder: 2 classes x 12 photos, split 7/2/3 per class."""
    from trainer.prepare import PrepareConfig, prepare

    base = tmp_path_factory.mktemp("prepared")
    photos = make_photo_folder(base / "photos")
    out = base / "data"
    prepare(PrepareConfig(out=out, images_dir=photos, size=64, workers=1, progress=False))
    return out


@pytest.fixture(scope="session")
def mask_dir(tmp_path_factory) -> Path:
    return make_mask_folder(tmp_path_factory.mktemp("masks") / "masks")


def tiny_train_config(data: Path, out: Path, **kw):
    from trainer.config import TrainConfig

    base = dict(
        data=str(data),
        out=str(out),
        widths=WIDTHS,
        batch_size=3,
        steps=4,
        loss="l1",
        workers=0,
        log_every=2,
        val_every=0,
        ckpt_every=100,
        val_images=4,
        progress=False,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, prepared) -> Path:
    """A run folder with a checkpoint of a few steps of a tiny model (validation on)."""
    from trainer.loop import train

    out = tmp_path_factory.mktemp("run") / "run"
    train(tiny_train_config(prepared, out, steps=3, val_every=3, ema=0.9, workers=1))
    return out


@pytest.fixture(scope="session")
def photo_data(tmp_path_factory):
    """A prepared 64 px folder whose source photos are 160x120 (the photos task must use those)."""
    from trainer.prepare import PrepareConfig, prepare

    base = tmp_path_factory.mktemp("photo_eval")
    photos = make_photo_folder(base / "photos", per_class=10, classes=2, size=(160, 120))
    out = base / "data"
    prepare(PrepareConfig(out=out, images_dir=photos, size=64, workers=1, progress=False))
    return out
