"""engine.damage: the detector network, its weight files, tiling and the detection API."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.damage import (
    DamageDetector,
    DamageMap,
    DamageNet,
    DamageNetConfig,
    DetectionCancelled,
    load_damage_weights,
    read_damage_info,
    save_damage_weights,
)
from engine.inpainter import InpaintCancelled
from engine.unet import PConvUNet, UNetConfig
from engine.weights import WeightsError, save_weights


def _net(seed: int = 0, width: int = 4) -> DamageNet:
    torch.manual_seed(seed)
    net = DamageNet(DamageNetConfig(width=width))
    # A bias on the head so the probabilities spread around 0.5 rather than sitting at one value.
    with torch.no_grad():
        net.head.weight.mul_(20)
    return net


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_forward_matches_the_detectors_cell_layout() -> None:
    """The detector builds the cell layout from uint8 itself; it must equal forward()."""
    net = _net().eval()
    det = DamageDetector.from_model(net)
    image = _photo(45, 70)
    p = det.probability(image)
    g = net.config.granularity
    padded = np.pad(image, ((0, (-45) % g), (0, (-70) % g), (0, 0)), mode="edge")
    x = torch.from_numpy(padded).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        q = torch.sigmoid(net(x))[0, 0, :45, :70].numpy()
    assert p.shape == (45, 70) and p.dtype == np.float32
    np.testing.assert_allclose(p, q, atol=1e-5)
    assert p.std() > 0.01  # the comparison is not between two constants


def test_tiles_leave_no_seam() -> None:
    """Tiles overlap by more than the receptive field: the tiled result is a single pass's."""
    net = _net(1)
    image = _photo(300, 410, 2)
    whole = DamageDetector.from_model(net, tile=4096).probability(image)
    tiled_det = DamageDetector.from_model(net, tile=64)
    tiled = tiled_det.probability(image)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_receptive_radius_bounds_the_real_one() -> None:
    net = _net(2, width=2)
    x = torch.zeros(1, 3, 512, 512, requires_grad=True)
    net(x)[0, 0, 256, 256].backward()
    ys, xs = np.nonzero(x.grad.abs().sum(1)[0].numpy())
    reach = max(256 - ys.min(), ys.max() - 256, 256 - xs.min(), xs.max() - 256)
    assert 0 < reach <= DamageDetector.from_model(net).receptive_radius()


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (16, 16), (33, 17)])
def test_tiny_images(shape: tuple[int, int]) -> None:
    result = DamageDetector.from_model(_net())(_photo(*shape))
    assert result.probability.shape == shape and result.mask.shape == shape
    assert result.mask.dtype == bool
    assert ((result.probability >= 0) & (result.probability <= 1)).all()


def test_detection_does_not_modify_the_input() -> None:
    image = _photo(40, 50)
    before = image.copy()
    DamageDetector.from_model(_net())(image)
    np.testing.assert_array_equal(image, before)


def test_threshold_and_rethreshold() -> None:
    det = DamageDetector.from_model(_net(), threshold=0.3)
    result = det(_photo(64, 64))
    assert result.threshold == 0.3
    np.testing.assert_array_equal(result.mask, result.probability >= 0.3)
    higher = result.at(0.7)
    assert isinstance(higher, DamageMap) and higher.probability is result.probability
    np.testing.assert_array_equal(higher.mask, result.probability >= 0.7)
    assert higher.mask.sum() < result.mask.sum()
    with pytest.raises(ValueError, match="threshold"):
        det(_photo(8, 8), threshold=1.5)
    with pytest.raises(ValueError, match="threshold"):
        result.at(0.0)
    assert result.at(0.3) is result and higher.at(0.3).mask.sum() == result.mask.sum()  # no pass again


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 4), np.uint8),
        np.zeros((10, 10, 3), np.uint16),
        np.zeros((0, 10, 3), np.uint8),
        "not an image",
    ],
)
def test_bad_images_get_a_clear_error(bad: object) -> None:
    with pytest.raises(ValueError, match="image"):
        DamageDetector.from_model(_net())(bad)  # type: ignore[arg-type]


def test_cancel_and_progress() -> None:
    det = DamageDetector.from_model(_net(), tile=32)
    seen: list[float] = []
    det(_photo(400, 400), progress=seen.append)
    assert len(seen) > 1 and seen == sorted(seen) and seen[-1] == 1.0
    with pytest.raises(DetectionCancelled):
        det(_photo(400, 400), cancel=lambda: True)
    assert issubclass(DetectionCancelled, InpaintCancelled)


def test_weights_round_trip(tmp_path) -> None:
    net = _net(3)
    path = save_damage_weights(tmp_path / "d.safetensors", net, {"threshold": 0.42, "steps": 7})
    info = read_damage_info(path)
    assert info.config == net.config and info.threshold == 0.42 and info.provenance["steps"] == 7
    loaded, _ = load_damage_weights(path)
    image = _photo(50, 60)
    a = DamageDetector.from_model(net.eval())(image).probability
    det = DamageDetector(path, device="cpu")
    assert det.threshold == 0.42
    np.testing.assert_array_equal(det(image).probability, a)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)


def test_foreign_and_corrupt_weight_files(tmp_path) -> None:
    inpainting = save_weights(
        tmp_path / "pconv.safetensors",
        PConvUNet(UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3), image_size=64)),
    )
    with pytest.raises(WeightsError, match="not a Retoucher damage detector"):
        DamageDetector(inpainting, device="cpu")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        DamageDetector(junk, device="cpu")
    good = save_damage_weights(tmp_path / "good.safetensors", _net())
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-200])
    with pytest.raises(WeightsError):
        DamageDetector(truncated, device="cpu")
    with pytest.raises(WeightsError, match="not found"):
        DamageDetector(tmp_path / "missing.safetensors", device="cpu")


def test_a_damage_file_with_a_broken_description_is_refused(tmp_path) -> None:
    """A detector whose header's provenance is not an object, or whose config is no JSON, is a
    WeightsError naming the file (the same reading as the inpainting model's header)."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    good = save_damage_weights(tmp_path / "good.safetensors", _net())
    with safe_open(str(good), framework="np") as f:
        meta = f.metadata()
    tensors = load_file(str(good))
    for name, change, message in [
        ("listed.safetensors", {"provenance": "[1, 2]"}, "broken provenance \\(a list"),
        ("garbled.safetensors", {"config": "{not json"}, "broken architecture"),
    ]:
        path = tmp_path / name
        save_file(tensors, str(path), metadata={**meta, **change})
        with pytest.raises(WeightsError, match=f"{name}.*{message}"):
            read_damage_info(path)


def test_missing_bundled_detector_says_how_to_get_one(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RETOUCHER_RESOURCES", str(tmp_path))
    with pytest.raises(WeightsError, match="retoucher-train damage"):
        DamageDetector(device="cpu")


def test_a_grey_scan_stored_as_rgb_runs() -> None:
    """A grey scan, as imageio loads it (three equal channels), goes through the RGB path."""
    grey = np.repeat(_photo(40, 40)[..., :1], 3, axis=2)
    result = DamageDetector.from_model(_net())(grey)
    assert result.probability.shape == (40, 40)


def test_the_detector_names_its_device_as_the_inpainter_does():
    """The batch summary read "model: ... on CPU" then "damage detector: ... on cpu" (a GPU's
    name for one, cuda:0 for the other)."""
    from engine import Inpainter, UNetConfig, create_model
    from engine.damage import DamageDetector, DamageNet, DamageNetConfig

    detector = DamageDetector.from_model(DamageNet(DamageNetConfig(width=4)), "cpu")
    inpainter = Inpainter.from_model(create_model(UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3))))
    assert detector.device_name == inpainter.device_name == "CPU"
