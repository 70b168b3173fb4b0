"""retoucher --self-test's detection step: the bundled detector loads and runs on the sample photo
with scratches drawn on it, and what it gives is checked (broken detectors are caught)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.damage import DamageMap
from retoucher import __main__ as cli
from retoucher.selftest import run_self_test, self_test_scratches
from tests.retoucher.damage_fakes import FakeDetector


def test_scratches_are_thin_lines_and_specks_inside_the_photo():
    drawn = self_test_scratches((72, 100))
    assert drawn.dtype == bool and drawn.shape == (72, 100)
    assert 0.02 < drawn.mean() < 0.15
    assert self_test_scratches((1, 1)).shape == (1, 1)  # any size works


def test_self_test_runs_the_bundled_detector(selftest_resources, capsys):
    assert cli.main(["--self-test", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "detector tiny-damage (damage.safetensors) loaded on cpu in " in out
    assert "  detect   " in out and "% of the pixels flagged at threshold 0.50" in out
    assert "probability float32 within [0, 1], mask bool 100x72: ok" in out
    assert out.rstrip().splitlines()[-1].startswith("self-test passed in ")


def test_version_names_the_bundled_detector(selftest_resources, capsys):
    assert cli.main(["--version"]) == 0
    line = capsys.readouterr().out.splitlines()[2]
    assert line == f"damage detector: tiny-damage ({selftest_resources / 'weights' / 'damage.safetensors'})"


def test_self_test_fails_clearly_without_the_detector(selftest_resources, capsys):
    path = selftest_resources / "weights" / "damage.safetensors"
    path.unlink()
    assert cli.main(["--self-test", "--device", "cpu"]) == 1
    assert f"self-test FAILED: no damage detector bundled: {path} does not exist" in capsys.readouterr().err
    assert cli.main(["--version"]) == 0
    assert "damage detector: no damage detector bundled" in capsys.readouterr().out


def test_self_test_fails_on_a_corrupt_detector(selftest_resources, capsys):
    (selftest_resources / "weights" / "damage.safetensors").write_bytes(b"\x00" * 64)
    assert cli.main(["--self-test", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "self-test FAILED: the damage detector did not load" in err and "damage.safetensors" in err


class Broken(FakeDetector):
    """Gives a DamageMap changed by ``spoil(probability, threshold)`` -> (probability, mask)."""

    def __init__(self, spoil):
        super().__init__()
        self.spoil = spoil

    def __call__(self, image, threshold=None, *, cancel=None, progress=None):
        found = super().__call__(image, threshold)
        p, mask = self.spoil(found.probability, found.threshold)
        return DamageMap(p, found.threshold, mask)


@pytest.mark.parametrize(
    "spoil, message",
    [
        (
            lambda p, t: (p.astype(np.float64), p >= t),
            "probability is ndarray (72, 100) float64, expected float32",
        ),
        (lambda p, t: (p[:-1], p[:-1] >= t), "expected float32 (72, 100)"),
        (lambda p, t: (p * 2, p * 2 >= t), "not within [0, 1]"),
        (lambda p, t: (np.full_like(p, np.nan), p >= t), "not within [0, 1]"),
        (lambda p, t: (p, (p >= t).astype(np.uint8)), "mask is ndarray (72, 100) uint8, expected bool"),
        (lambda p, t: (p, p < t), "not its probability at its threshold"),
    ],
    ids=["float64", "wrong-size", "above-1", "nan", "mask-uint8", "mask-inverted"],
)
def test_self_test_catches_a_broken_detector(selftest_resources, spoil, message, capsys):
    assert run_self_test(device="cpu", detector_factory=lambda w, d: Broken(spoil)) == 1
    err = capsys.readouterr().err
    assert err.startswith("self-test FAILED: the detector's") and message in err


def test_self_test_catches_a_detector_that_raises(selftest_resources, capsys):
    def factory(weights, device):
        def detect(image, threshold=None, **kwargs):
            raise RuntimeError("kernel exploded")

        return detect

    assert run_self_test(device="cpu", detector_factory=factory) == 1
    assert "self-test FAILED: RuntimeError: kernel exploded" in capsys.readouterr().err
