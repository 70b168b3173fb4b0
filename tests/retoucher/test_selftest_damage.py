"""retoucher --self-test's detection step: the bundled detector loads and runs on the sample photo
with scratches and specks drawn on it, what it gives is checked (broken detectors are caught), and
a calibrated detector must find the damage (useless ones are caught)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from engine.damage import DamageMap
from engine.imageio import load_image
from retoucher import __main__ as cli
from retoucher.bundled import sample_photo
from retoucher.selftest import detection_quality, run_self_test, self_test_damage
from tests.retoucher.damage_fakes import FakeDetector


def test_the_drawn_damage_is_solid_lines_and_specks_each_in_one_tone():
    grey = np.full((72, 100, 3), 128, np.uint8)
    damaged, drawn = self_test_damage(grey)
    assert drawn.dtype == bool and drawn.shape == (72, 100) and 0.03 < drawn.mean() < 0.2
    assert np.array_equal(grey, np.full((72, 100, 3), 128, np.uint8))  # the input is untouched
    assert (damaged[~drawn] == 128).all() and (damaged[drawn] != 128).all()
    assert (damaged == damaged[:, :, :1]).all()  # grey tones, the same in every channel
    tone = damaged[:, :, 0].astype(int)
    bright, dark = drawn & (tone > 200), drawn & (tone < 50)
    assert np.array_equal(bright | dark, drawn) and bright.sum() > 100 and dark.sum() > 100
    # Solid, not dotted: drawn neighbours share their tone, except where two lines cross.
    pairs = np.concatenate([(drawn[:, 1:] & drawn[:, :-1]).ravel(), (drawn[1:] & drawn[:-1]).ravel()])
    differ = np.concatenate(
        [
            (drawn[:, 1:] & drawn[:, :-1] & (bright[:, 1:] != bright[:, :-1])).ravel(),
            (drawn[1:] & drawn[:-1] & (bright[1:] != bright[:-1])).ravel(),
        ]
    )
    assert differ.sum() < 0.05 * pairs.sum()
    assert self_test_damage(np.zeros((1, 1, 3), np.uint8))[1].shape == (1, 1)  # any size works


def test_detection_quality_counts_with_a_2_px_tolerance():
    drawn = np.zeros((40, 40), bool)
    drawn[20, 5:25] = True  # 20 pixels
    found = np.zeros((40, 40), bool)
    found[22, 5:15] = True  # 2 px off: the first 10 count as found, and are no false finds
    found[0, 0:8] = True  # far away: 8 false finds
    share, flagged = detection_quality(found, drawn)
    # Within 2 px of the line: rows 18-22 along its 20 columns, 2 more at each end of row 20, 1 more
    # at each end of rows 19 and 21.
    undamaged = 40 * 40 - (5 * 20 + 2 * 2 + 2 * 2)
    assert share == pytest.approx(0.5) and flagged == pytest.approx(8 / undamaged)


def test_self_test_runs_the_bundled_detector(selftest_resources, capsys):
    assert cli.main(["--self-test", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "detector tiny-damage (damage.safetensors) loaded on CPU in " in out
    assert "  detect   " in out and "% of the pixels flagged at threshold 0.50" in out
    assert "probability float32 within [0, 1], mask bool 100x72: ok" in out
    assert "  quality  not checked: the detector's weight file has no calibration (" in out
    assert "% of the drawn damage found (within 2 px), " in out
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


class Calibrated(FakeDetector):
    """A fake with a trained detector's provenance, whose probability is ``probability(image)``."""

    info = SimpleNamespace(provenance={"threshold": 0.5, "calibration": {"split": "train", "f1": 0.9}})


def _drawn(resources) -> np.ndarray:
    return self_test_damage(load_image(sample_photo(resources)).rgb)[1]


def test_a_calibrated_detector_that_finds_the_damage_passes_with_its_figures(selftest_resources, capsys):
    drawn = _drawn(selftest_resources)
    hits = drawn.copy()
    hits[: drawn.shape[0] // 5] = False  # misses what was drawn in the top fifth: still enough
    fake = Calibrated(lambda rgb: hits.astype(np.float32))
    rc = run_self_test(device="cpu", detector_factory=lambda w, d: fake)
    out = capsys.readouterr().out
    assert rc == 0, out
    share, flagged = detection_quality(hits, drawn)
    assert 0.5 <= share < 1.0 and flagged == 0.0
    assert (
        f"  quality  {100 * share:.0f}% of the drawn damage found (within 2 px), 0.00% of the undamaged "
        "pixels flagged (needed: at least 50%, at most 2%): ok"
    ) in out


@pytest.mark.parametrize(
    "probability, message",
    [
        (lambda rgb: np.zeros(rgb.shape[:2], np.float32), "found only 0% of the damage drawn"),
        (lambda rgb: np.ones(rgb.shape[:2], np.float32), "flagged 100.00% of the undamaged pixels"),
    ],
    ids=["finds-nothing", "flags-everything"],
)
def test_a_useless_calibrated_detector_fails(selftest_resources, probability, message, capsys):
    assert run_self_test(device="cpu", detector_factory=lambda w, d: Calibrated(probability)) == 1
    err = capsys.readouterr().err
    assert err.startswith("self-test FAILED: the detector ") and message in err


def test_a_useless_uncalibrated_detector_is_only_reported(selftest_resources, capsys):
    fake = FakeDetector(lambda rgb: np.zeros(rgb.shape[:2], np.float32))
    assert run_self_test(device="cpu", detector_factory=lambda w, d: fake) == 0
    out = capsys.readouterr().out
    assert "quality  not checked: the detector's weight file has no calibration (0% of the drawn" in out


def test_the_one_detector_factory_takes_no_path_or_an_empty_one_for_the_bundled_detector(
    selftest_resources,
):
    from retoucher.damage import default_detector_factory

    assert default_detector_factory("", "cpu").name == "tiny-damage"  # an unset preference
    assert default_detector_factory(None, "cpu").name == "tiny-damage"
