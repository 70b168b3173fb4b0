"""The VGG's per-layer calibration (trainer.vgg_calibration) and the loss-balance report."""

from __future__ import annotations

import pytest
import torch

from trainer.losses import InpaintingLoss, LossWeights, describe_balance, loss_balance
from trainer.vgg import VGG19_PLAN, VGGFeatures
from trainer.vgg_calibration import (
    VGGCalibration,
    calibrate,
    calibration_images,
    layer_means,
    resolve_mode,
)


def _vgg(convention: str = "caffe") -> VGGFeatures:
    torch.manual_seed(0)
    vgg = VGGFeatures(VGG19_PLAN, convention)
    for conv in vgg.convs():  # positive-leaning weights: every layer has activations
        conv.weight.data = conv.weight.data.abs() * 0.05
        conv.bias.data.fill_(0.01)
    return vgg


def _photos(n: int = 6, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def test_calibration_brings_every_layer_to_mean_activation_one():
    vgg, photos = _vgg(), _photos()
    vgg.set_layer_scales([1.0, 3.0, 10.0])  # layers of very different sizes
    before = layer_means(vgg, photos)
    assert max(before) / min(before) > 2
    cal = calibrate(vgg, photos)
    assert cal.means == pytest.approx(before)
    assert layer_means(vgg, photos) == pytest.approx((1.0, 1.0, 1.0), rel=1e-5)
    assert cal.layers == ("pool1", "pool2", "pool3") and cal.images == 6
    assert "pool3 mean" in cal.describe()
    # the features are the uncalibrated ones times the factor, nothing else
    raw = _vgg()
    raw.set_layer_scales([1.0, 3.0, 10.0])
    x = photos.float() / 127.5 - 1.0
    for f, r, s0, s in zip(vgg(x), raw(x), raw.layer_scales, cal.scales):
        assert torch.allclose(f, r / s0 * s, rtol=1e-5, atol=1e-6)


def test_a_stored_calibration_round_trips():
    cal = calibrate(_vgg(), _photos())
    again = VGGCalibration.from_dict(cal.to_dict())
    assert again == cal


def test_auto_calibrates_the_caffe_vgg_only():
    assert resolve_mode("auto", _vgg("caffe")) == "mean"
    assert resolve_mode("auto", _vgg("torchvision")) == "off"
    assert resolve_mode("off", _vgg("caffe")) == "off"
    with pytest.raises(ValueError, match="calibration"):
        resolve_mode("sometimes", _vgg())


def test_layer_scales_are_checked():
    vgg = _vgg()
    with pytest.raises(ValueError, match="3 layer scales"):
        vgg.set_layer_scales([1.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        vgg.set_layer_scales([1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="uint8"):
        layer_means(vgg, torch.zeros(2, 3, 8, 8))


def test_calibration_images_are_train_photos_evenly_spaced(prepared):
    images = calibration_images(prepared, count=5)
    assert images.dtype == torch.uint8 and images.shape == (5, 3, 64, 64)
    assert len({bytes(i.numpy()) for i in images}) == 5
    small = calibration_images(prepared, count=5, size=32)  # the loss's --vgg-size
    assert small.shape == (5, 3, 32, 32)


def test_per_layer_terms_add_up_to_the_vgg_terms_and_the_balance_to_one():
    vgg = _vgg()
    torch.manual_seed(2)
    out, gt = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    mask = torch.ones(2, 1, 32, 32)
    mask[:, :, 8:20, 4:28] = 0.0
    terms = InpaintingLoss(vgg)(out, gt, mask)
    layers = ("pool1", "pool2", "pool3")
    perc = sum(terms[f"perceptual_{n}"] for n in layers)
    style = sum(terms[f"style_{n}"] for n in layers)
    assert perc.item() == pytest.approx(terms["perceptual"].item(), rel=1e-5)
    assert style.item() == pytest.approx((terms["style_out"] + terms["style_comp"]).item(), rel=1e-5)

    values = {k: float(v) for k, v in terms.items()}
    w = LossWeights()
    shares = loss_balance(values, w)
    main = ("hole", "valid", "tv", "perceptual", "style")
    assert sum(shares[k] for k in main) == pytest.approx(1.0)
    assert shares["style"] == pytest.approx(w.style * style.item() / terms["total"].item(), rel=1e-5)
    for term in ("perceptual", "style"):
        assert sum(shares[f"{term}/{n}"] for n in layers) == pytest.approx(1.0)
    line = describe_balance(values, w)
    assert line.startswith(f"weighted loss {values['total']:.3f}: hole ")
    assert "style" in line and "pool3" in line


def test_calibration_moves_the_balance_off_the_style_term():
    """The point of calibrating: with features several times too large the style term (which
    grows with their square) takes nearly all of the loss; at mean 1 it does not."""
    vgg, photos = _vgg(), _photos(4, 32)
    calibrate(vgg, photos)
    vgg.set_layer_scales([s * 8 for s in vgg.layer_scales])  # features 8x too large
    x = photos.float() / 127.5 - 1.0
    out = x.flip(-1)
    mask = torch.ones(4, 1, 32, 32)
    mask[:, :, 8:24, 8:24] = 0
    loss = InpaintingLoss(vgg)
    big = loss_balance({k: float(v) for k, v in loss(out, x, mask).items()}, LossWeights())
    calibrate(vgg, photos)
    calm = loss_balance({k: float(v) for k, v in loss(out, x, mask).items()}, LossWeights())
    assert calm["style"] < big["style"]
    assert calm["hole"] > big["hole"]
