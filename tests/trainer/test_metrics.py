"""PSNR, SSIM and hole L1 against hand values and an independent OpenCV-based SSIM."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from trainer.inference import composite, score
from trainer.metrics import hole_l1, psnr, ssim


def test_psnr_hand_value():
    a = torch.zeros(1, 3, 4, 4)
    b = torch.full((1, 3, 4, 4), 0.1)  # mse 0.01 -> 20 dB
    assert psnr(a, b).item() == pytest.approx(20.0, abs=1e-4)
    assert psnr(a, a).item() == pytest.approx(100.0)


def test_hole_l1_hand_value():
    a = torch.zeros(1, 3, 2, 2)
    b = torch.zeros(1, 3, 2, 2)
    b[0, :, 0, 0] = 0.5
    b[0, :, 1, 1] = 0.9  # outside the hole: ignored
    hole = torch.zeros(1, 1, 2, 2)
    hole[0, 0, 0, 0] = 1
    hole[0, 0, 0, 1] = 1
    assert hole_l1(a, b, hole).item() == pytest.approx((0.5 * 3) / (2 * 3))


def _ssim_opencv(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al.'s SSIM written independently with OpenCV: Gaussian 11/1.5, valid region."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = 0.01**2, 0.03**2
    g = cv2.getGaussianKernel(11, 1.5)
    win = g @ g.T
    vals = []
    for ch in range(a.shape[2]):
        x, y = a[..., ch], b[..., ch]

        def f(t):
            return cv2.filter2D(t, -1, win, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]

        mx, my = f(x), f(y)
        sxx, syy, sxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
        vals.append(s.mean())
    return float(np.mean(vals))


def test_ssim_matches_an_independent_implementation():
    rng = np.random.default_rng(0)
    a = rng.random((40, 52, 3))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    ta = torch.from_numpy(a).permute(2, 0, 1)[None]
    tb = torch.from_numpy(b).permute(2, 0, 1)[None]
    assert ssim(ta, tb).item() == pytest.approx(_ssim_opencv(a, b), abs=1e-5)
    assert ssim(ta, ta).item() == pytest.approx(1.0)
    assert ssim(ta, tb).item() < 0.95


def test_score_and_composite_on_uint8_images():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    holes = np.zeros((2, 32, 32), bool)
    holes[:, 8:16, 8:16] = True
    filled = np.zeros_like(img)
    comp = composite(img, filled, holes)
    assert np.array_equal(comp[~holes], img[~holes]) and (comp[holes] == 0).all()
    s = score(comp, img, holes)
    assert s["psnr"].shape == (2,)
    expected_l1 = img[holes].astype(float).mean(axis=(0, 1)).mean() / 255  # |0 - img| in the hole
    assert s["hole_l1"].mean() == pytest.approx(expected_l1, rel=1e-3)
    perfect = score(img, img, holes)
    assert (perfect["hole_l1"] == 0).all() and np.allclose(perfect["ssim"], 1.0)
