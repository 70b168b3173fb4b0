"""The paper's loss terms against small cases computed by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainer.losses import (
    InpaintingLoss,
    dilate_holes,
    gram_matrix,
    hole_valid_l1,
    perceptual_loss,
    style_loss,
    total_variation,
)


def test_hole_and_valid_l1_are_normalised_by_all_elements():
    gt = torch.zeros(1, 2, 2, 2)
    out = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[-1.0, 0.0], [0.0, 0.0]]]])
    mask = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])  # one hole pixel, top right
    hole, valid = hole_valid_l1(out, gt, mask)
    # N_Igt = C*H*W = 8. Hole pixel: |2| + |0| = 2. Valid: |1|+|3|+|4| + |-1|+0+0 = 9.
    assert hole.item() == pytest.approx(2 / 8)
    assert valid.item() == pytest.approx(9 / 8)


def test_l1_terms_average_over_the_batch():
    gt = torch.zeros(2, 1, 1, 2)
    out = torch.tensor([[[[1.0, 1.0]]], [[[3.0, 3.0]]]])
    mask = torch.ones(2, 1, 1, 2)
    _, valid = hole_valid_l1(out, gt, mask)
    assert valid.item() == pytest.approx((1.0 + 3.0) / 2)


def test_image_hole_weighting_counts_each_images_hole_error_alike():
    gt = torch.zeros(3, 1, 4, 4)
    out = torch.ones(3, 1, 4, 4)  # error 1 everywhere
    mask = torch.ones(3, 1, 4, 4)
    mask[0, :, 0, 0] = 0.0  # 1/16 hole
    mask[1, :, :2, :] = 0.0  # 8/16 hole
    # image 2 has no hole at all
    pixel, valid_p = hole_valid_l1(out, gt, mask, "pixel")
    image, valid_i = hole_valid_l1(out, gt, mask, "image")
    # pixel (the paper): (1/16 + 8/16 + 0) / 3; the big hole dominates
    assert pixel.item() == pytest.approx((1 / 16 + 8 / 16) / 3)
    # image: each holed image counts its mean hole error (1) times the mean hole fraction of the
    # holed images ((1/16 + 8/16) / 2), the image without a hole counts 0
    mean_frac = (1 / 16 + 8 / 16) / 2
    assert image.item() == pytest.approx((mean_frac + mean_frac + 0.0) / 3)
    assert valid_i.item() == pytest.approx(valid_p.item())  # the valid term is untouched


def test_image_hole_weighting_equals_the_paper_for_equal_holes():
    gt = torch.zeros(2, 3, 8, 8)
    out = torch.randn(2, 3, 8, 8)
    mask = torch.ones(2, 1, 8, 8)
    mask[0, :, 2:5, 2:5] = 0.0
    mask[1, :, 4:7, 1:4] = 0.0
    a, _ = hole_valid_l1(out, gt, mask, "pixel")
    b, _ = hole_valid_l1(out, gt, mask, "image")
    assert b.item() == pytest.approx(a.item())
    with pytest.raises(ValueError, match="hole_weighting"):
        hole_valid_l1(out, gt, mask, "area")
    loss = InpaintingLoss(None, mode="l1", hole_weighting="image")
    assert loss(out, gt, mask)["hole"].item() == pytest.approx(a.item())


def test_gram_matrix_normalisation():
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # C=2, H=1, W=2
    g = gram_matrix(f)
    # Psi^T Psi = [[1*1+2*2, 1*3+2*4], [.., 3*3+4*4]] = [[5, 11], [11, 25]], / (C*H*W = 4)
    assert torch.allclose(g, torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4)


def test_style_loss_is_mean_abs_gram_difference():
    a = [torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])]
    b = torch.zeros_like(a[0])
    b[0, 0, 0, 0] = 2.0  # gram of b: [[4, 0], [0, 0]] / 4
    loss = style_loss(a, [gram_matrix(b)])
    diff = torch.tensor([[5.0 - 4.0, 11.0], [11.0, 25.0]]) / 4
    assert loss.item() == pytest.approx(diff.abs().sum().item() / 4)  # / C^2


def test_perceptual_loss_sums_layer_means():
    a = [torch.ones(1, 2, 2, 2), torch.zeros(1, 1, 1, 1)]
    b = [torch.zeros(1, 2, 2, 2), torch.full((1, 1, 1, 1), 3.0)]
    assert perceptual_loss(a, b).item() == pytest.approx(1.0 + 3.0)


def test_dilated_hole_region_is_one_pixel_larger():
    mask = torch.ones(1, 1, 5, 5)
    mask[0, 0, 2, 2] = 0.0
    p = dilate_holes(mask)
    expected = torch.zeros(1, 1, 5, 5)
    expected[0, 0, 1:4, 1:4] = 1.0
    assert torch.equal(p, expected)


def test_total_variation_only_inside_the_dilated_hole():
    # 1 channel 5x5; hole at the centre -> P = the 3x3 block rows/cols 1..3
    mask = torch.ones(1, 1, 5, 5)
    mask[0, 0, 2, 2] = 0.0
    comp = torch.zeros(1, 1, 5, 5)
    comp[0, 0, 2, 2] = 1.0  # a spike in the hole
    comp[0, 0, 0, 0] = 100.0  # outside P: must not count
    tv = total_variation(comp, mask)
    # pairs inside P touching the spike: left/right (2) and up/down (2), each |1|; N = 25
    assert tv.item() == pytest.approx(4 / 25)


def test_total_variation_counts_pairs_across_p_only_when_both_inside():
    mask = torch.ones(1, 1, 1, 6)
    mask[0, 0, 0, 2] = 0.0  # P = columns 1..3
    comp = torch.tensor([[[[0.0, 1.0, 3.0, 6.0, 10.0, 15.0]]]])
    # horizontal pairs inside P: (1,2): 2, (2,3): 3  -> 5 / N(=6)
    assert total_variation(comp, mask).item() == pytest.approx(5 / 6)


class _TinyFeatures(nn.Module):
    """A stand-in feature extractor: the image itself and its 2x2 average."""

    def forward(self, x):
        return [x, nn.functional.avg_pool2d(x, 2)]


def test_total_uses_the_papers_weights():
    torch.manual_seed(0)
    out, gt = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 3, 8, 8) * 2 - 1
    mask = torch.ones(2, 1, 8, 8)
    mask[:, :, 2:5, 3:7] = 0.0
    terms = InpaintingLoss(_TinyFeatures())(out, gt, mask)
    expected = (
        terms["valid"]
        + 6 * terms["hole"]
        + 0.05 * terms["perceptual"]
        + 120 * (terms["style_out"] + terms["style_comp"])
        + 0.1 * terms["tv"]
    )
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-6)
    comp = mask * gt + (1 - mask) * out
    fo, fc, fg = _TinyFeatures()(out), _TinyFeatures()(comp), _TinyFeatures()(gt)
    assert terms["perceptual"].item() == pytest.approx(
        (perceptual_loss(fo, fg) + perceptual_loss(fc, fg)).item(), rel=1e-6
    )
    assert terms["style_comp"].item() == pytest.approx(
        style_loss(fc, [gram_matrix(f) for f in fg]).item(), rel=1e-6
    )


def test_l1_mode_has_no_vgg_terms():
    out, gt = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    mask = torch.ones(1, 1, 8, 8)
    mask[..., :4] = 0
    terms = InpaintingLoss(None, mode="l1")(out, gt, mask)
    assert set(terms) == {"valid", "hole", "tv", "total"}
    assert terms["total"].item() == pytest.approx(
        (terms["valid"] + 6 * terms["hole"] + 0.1 * terms["tv"]).item()
    )
    with pytest.raises(ValueError, match="VGG"):
        InpaintingLoss(None, mode="full")


class _ComputedFeatures(nn.Module):
    """Like _TinyFeatures, but every feature is a new tensor, as a real VGG's are (the identity
    would hand the photo itself back as a "feature", gradient and all)."""

    def forward(self, x):
        return [2.0 * x, nn.functional.avg_pool2d(x, 2)]


def test_loss_gradient_reaches_the_output_only():
    """The loss trains the output: every output pixel gets a finite gradient, and the VGG terms
    send none to the photo (its features are constants). With every pixel a hole the composite
    is the output, so the photo's gradient must be exactly that of its L1 hole term."""
    out = (torch.rand(1, 3, 8, 8) * 2 - 1).requires_grad_()
    gt = (torch.rand(1, 3, 8, 8) * 2 - 1).requires_grad_()
    holes_only = torch.zeros(1, 1, 8, 8)
    InpaintingLoss(_ComputedFeatures())(out, gt, holes_only)["total"].backward()
    assert out.grad is not None and torch.isfinite(out.grad).all() and (out.grad != 0).all()
    gt_alone = gt.detach().clone().requires_grad_()
    (6 * hole_valid_l1(out.detach(), gt_alone, holes_only)[0]).backward()
    assert gt.grad is not None and torch.allclose(gt.grad, gt_alone.grad, rtol=0, atol=1e-9)


def test_composite_terms_reach_the_output_only_inside_the_hole():
    """I_comp takes the photo outside the hole: its terms (tv, style_comp) and L_hole move the
    output only inside the hole, L_valid only outside."""
    torch.manual_seed(1)
    out = (torch.rand(1, 3, 8, 8) * 2 - 1).requires_grad_()
    gt = torch.rand(1, 3, 8, 8) * 2 - 1
    mask = torch.ones(1, 1, 8, 8)
    mask[..., 2:5, 3:6] = 0.0
    hole = (mask == 0).expand_as(out)
    terms = InpaintingLoss(_TinyFeatures())(out, gt, mask)

    def grad(name: str) -> torch.Tensor:
        return torch.autograd.grad(terms[name], out, retain_graph=True)[0]

    for name in ("hole", "tv", "style_comp"):
        g = grad(name)
        assert (g[~hole] == 0).all() and (g[hole] != 0).any(), name
    g = grad("valid")
    assert (g[hole] == 0).all() and (g[~hole] != 0).all()


def test_hole_weighting_comes_from_the_training_config():
    from trainer.config import TrainConfig
    from trainer.step import build_loss

    loss, _ = build_loss(TrainConfig(loss="l1", hole_weighting="image"), torch.device("cpu"))
    assert loss.hole_weighting == "image"
    paper = build_loss(TrainConfig(loss="l1"), torch.device("cpu"))[0]
    assert paper.hole_weighting == "pixel" and paper.weights.valid == 1.0
    assert build_loss(TrainConfig(loss="l1", valid_weight=0.1), torch.device("cpu"))[0].weights.valid == 0.1
    with pytest.raises(ValueError, match="--valid-weight"):
        TrainConfig(valid_weight=-1.0)
    tuned = build_loss(TrainConfig(loss="l1", style_weight=30.0, perceptual_weight=0.1), torch.device("cpu"))
    assert (tuned[0].weights.style, tuned[0].weights.perceptual) == (30.0, 0.1)
    assert (paper.weights.style, paper.weights.perceptual) == (120.0, 0.05)
    with pytest.raises(ValueError, match="--style-weight"):
        TrainConfig(style_weight=-1.0)
    with pytest.raises(ValueError, match="--hole-weighting"):
        TrainConfig(hole_weighting="area")


def test_valid_weight_scales_only_the_valid_term():
    from trainer.losses import LossWeights

    gt = torch.zeros(1, 3, 8, 8)
    out = torch.full((1, 3, 8, 8), 0.5)
    mask = torch.ones(1, 1, 8, 8)
    mask[..., 2:4, 2:4] = 0.0
    paper = InpaintingLoss(None, mode="l1")(out, gt, mask)
    none = InpaintingLoss(None, weights=LossWeights(valid=0.0), mode="l1")(out, gt, mask)
    assert paper["valid"].item() == pytest.approx(0.5 * 60 / 64)
    assert paper["total"].item() - none["total"].item() == pytest.approx(paper["valid"].item())


def test_the_hole_mse_term_is_the_squared_error_and_pulls_towards_the_mean():
    from trainer.config import TrainConfig
    from trainer.losses import LossWeights, describe_balance, hole_mse
    from trainer.step import build_loss

    gt = torch.tensor([-1.0, -1.0, 1.0]).view(1, 1, 1, 3).expand(1, 3, 1, 3).contiguous()
    mask = torch.zeros(1, 1, 1, 3)  # all hole
    out = torch.zeros(1, 3, 1, 3)
    assert hole_mse(out, gt, mask).item() == pytest.approx(1.0)
    plain = InpaintingLoss(None, mode="l1")(out, gt, mask)
    mixed = InpaintingLoss(None, weights=LossWeights(hole_mse=20.0), mode="l1")(out, gt, mask)
    assert "hole_mse" not in plain and mixed["hole_mse"].item() == pytest.approx(1.0)
    assert mixed["total"].item() - plain["total"].item() == pytest.approx(20.0)
    assert "hole 23%, hole_mse 77%" in describe_balance(
        {k: float(v) for k, v in mixed.items()}, LossWeights(hole_mse=20.0)
    )

    def best_constant(weights: LossWeights) -> float:  # one value for the three hole pixels
        c = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([c], lr=0.02)
        loss = InpaintingLoss(None, weights=weights, mode="l1")
        for _ in range(600):
            opt.zero_grad()
            loss(c.view(1, 1, 1, 1).expand(1, 3, 1, 3), gt, mask)["total"].backward()
            opt.step()
        return c.item()

    no_tv = dict(tv=0.0)
    assert best_constant(LossWeights(**no_tv)) == pytest.approx(-1.0, abs=0.05)  # L1: the median
    mean = gt[0, 0].mean().item()
    assert best_constant(LossWeights(hole=0.0, hole_mse=6.0, **no_tv)) == pytest.approx(mean, abs=0.02)
    assert (
        build_loss(TrainConfig(loss="l1", hole_mse_weight=20.0), torch.device("cpu"))[0].weights.hole_mse
        == 20.0
    )
    with pytest.raises(ValueError, match="--hole-mse-weight must be in"):
        TrainConfig(hole_mse_weight=-1.0)
