"""``retoucher --self-test`` and ``retoucher --version`` against a resources/ folder in tmp_path
(RETOUCHER_RESOURCES) holding the tiny random model and detector and a small generated sample
photo. The self-test's detection step is tested in tests/retoucher/test_selftest_damage.py."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from retoucher import __main__ as cli
from retoucher.selftest import is_trained, run_self_test, self_test_hole

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def resources(selftest_resources) -> Path:
    """A folder laid out like resources/: weights/default.safetensors, weights/damage.safetensors
    and sample.jpg (see tests/conftest.py)."""
    return selftest_resources


def test_self_test_hole_has_two_regions_inside_the_photo():
    hole = self_test_hole((72, 100))
    assert hole.dtype == bool and hole.shape == (72, 100)
    assert 0.05 < hole.mean() < 0.2
    assert not hole[0].any() and not hole[-1].any() and not hole[:, 0].any() and not hole[:, -1].any()
    # the centre and a square near the top-left corner, separated by valid pixels
    assert hole[36, 50] and hole[72 // 8, 100 // 8] and not hole[20, 20]


def test_self_test_passes_and_prints_timings(resources, capsys):
    assert cli.main(["--self-test", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert str(resources) in out
    assert "tiny-random" in out and "loaded on CPU" in out
    assert "photo    sample.jpg, 100x72" in out
    assert "fill" in out and " s" in out
    assert "pixels outside the hole unchanged: ok" in out
    assert out.rstrip().splitlines()[-1].startswith("self-test passed in ")


def test_self_test_fails_clearly_without_a_model(resources, capsys):
    (resources / "weights" / "default.safetensors").unlink()
    assert cli.main(["--self-test"]) == 1
    err = capsys.readouterr().err
    assert "self-test FAILED: no model bundled" in err
    assert "default.safetensors" in err


def test_self_test_fails_clearly_without_the_sample_photo(resources, capsys):
    (resources / "sample.jpg").unlink()
    assert cli.main(["--self-test"]) == 1
    assert "self-test FAILED: no sample photo bundled" in capsys.readouterr().err


def test_self_test_fails_on_a_corrupt_model(resources, capsys):
    (resources / "weights" / "default.safetensors").write_bytes(b"\x00" * 64)
    assert cli.main(["--self-test"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("self-test FAILED:") and "default.safetensors" in err


def test_self_test_fails_on_an_unreadable_sample_photo(resources, capsys):
    (resources / "sample.jpg").write_bytes(b"not a jpeg")
    assert cli.main(["--self-test"]) == 1
    assert "self-test FAILED: the sample photo did not load" in capsys.readouterr().err


def _broken(change):
    def factory(weights, device):
        def fill(image, hole):
            return change(image.copy(), hole)

        return fill

    return factory


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda img, hole: img, "no hole pixel changed"),
        (
            lambda img, hole: np.where(hole[..., None], 255 - img, img ^ 1).astype(np.uint8),
            "pixels outside the hole changed",
        ),
        (lambda img, hole: img[:-1], "expected uint8"),
        (lambda img, hole: img.astype(np.float32), "expected uint8"),
    ],
    ids=["unfilled", "outside-changed", "wrong-size", "wrong-dtype"],
)
def test_self_test_catches_a_broken_fill(resources, change, message, capsys):
    assert run_self_test(inpainter_factory=_broken(change)) == 1
    assert message in capsys.readouterr().err


def test_self_test_catches_a_fill_that_raises(resources, capsys):
    def factory(weights, device):
        def fill(image, hole):
            raise RuntimeError("kernel exploded")

        return fill

    assert run_self_test(inpainter_factory=factory) == 1
    assert "self-test FAILED: RuntimeError: kernel exploded" in capsys.readouterr().err


def test_version_prints_the_version_and_the_model_name(resources, capsys):
    assert cli.main(["--version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert lines[0] == f"retoucher {declared}"
    assert lines[1].startswith("model: tiny-random (")
    assert str(resources / "weights" / "default.safetensors") in lines[1]


def test_version_says_when_no_model_is_bundled(resources, capsys):
    (resources / "weights" / "default.safetensors").unlink()
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("model: no model bundled")


def test_version_says_when_the_model_file_is_unusable(resources, capsys):
    (resources / "weights" / "default.safetensors").write_bytes(b"garbage")
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("model: unusable model file")


def test_version_self_test_and_batch_never_run_the_platform_check(resources, monkeypatch, capsys):
    # They never start Qt, so they work without a display and without Qt's X11 libraries.
    from retoucher import platform_check

    def refuse(*args, **kwargs):
        raise AssertionError("only the app checks Qt's platform plugin")

    monkeypatch.setattr(platform_check, "platform_problem", refuse)
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["--version"]) == 0
    assert cli.main(["--self-test", "--device", "cpu"]) == 0
    assert cli.main(["--help"]) == 0
    assert cli.main(["batch", "--help"]) == 0


def test_help_still_does_not_import_torch():
    code = (
        "import sys; from retoucher.__main__ import main; rc = main(['--help']); "
        "print(rc, 'torch' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--self-test" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "0 False"


def test_self_test_checks_a_trained_models_network_not_only_that_the_hole_changed(
    tmp_path, monkeypatch, capsys
):
    """The app's full fill rebuilds a hole from its edge (edge matching, thin parts), so a model
    with zeroed weights still filled the sample at 27.3 dB and passed: a trained model's own fill
    must beat a flat fill by NETWORK_MARGIN_DB. The shipped model passes; the same file with its
    weights zeroed or negated fails."""
    import shutil

    import torch

    from engine.weights import load_weights, save_weights

    resources = ROOT / "resources"
    assert run_self_test(resources=resources, device="cpu") == 0
    out = capsys.readouterr().out
    assert "network  its own fill" in out and "at least 3 dB above" in out
    model, info = load_weights(resources / "weights" / "default.safetensors")
    assert is_trained(info)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for spoil in (torch.zero_, torch.neg):
        folder = tmp_path / spoil.__name__
        shutil.copytree(resources, folder)
        model.load_state_dict({k: spoil(v.clone()) if v.is_floating_point() else v for k, v in state.items()})
        save_weights(
            folder / "weights" / "default.safetensors",
            model,
            info.provenance,
            name=info.name,
            texture=info.texture,
            half=True,
        )
        assert run_self_test(resources=folder, device="cpu") == 1, spoil
        err = capsys.readouterr().err
        assert "self-test FAILED: the model's network fills the sample's hole at" in err, err


def test_an_untrained_models_network_is_only_reported(resources, tiny_weights, capsys):
    """A model that names no training (the tests' random one) gets its figures shown, not judged;
    the same weights naming training steps fail."""
    from engine.weights import load_weights, save_weights

    assert run_self_test(device="cpu") == 0
    assert "network  not checked: the weight file names no training steps" in capsys.readouterr().out
    model, info = load_weights(tiny_weights)
    save_weights(resources / "weights" / "default.safetensors", model, {"steps": 100}, name=info.name)
    assert run_self_test(device="cpu") == 1
    assert "its weights are broken" in capsys.readouterr().err


def test_version_and_help_refuse_extra_arguments_and_a_closed_pipe_is_no_error(capsys):
    """`retoucher --version --bogus` printed the version and exited 0; `retoucher --version |
    head -1` ended in a BrokenPipeError traceback."""
    for flag in ("--version", "--help"):
        assert cli.main([flag, "--bogus"]) == 2
        assert f"{flag} takes no arguments: --bogus" in capsys.readouterr().err
    code = (
        "import os, sys\n"
        "r, w = os.pipe()\n"
        "os.close(r)\n"  # the reader is gone before a byte is written
        "os.dup2(w, 1)\n"
        "from retoucher.__main__ import main\n"
        "sys.exit(main(['--version']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr


def test_version_with_no_stdout_at_all_is_no_error():
    """No stdout (closed; a windowed Windows build): an AttributeError traceback and exit 1."""
    proc = subprocess.run(
        ["sh", "-c", f"'{sys.executable}' -m retoucher --version >&-"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
