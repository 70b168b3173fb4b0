"""The adversarial term: the SN-PatchGAN discriminator, the hinge losses, the step that plays the
two against each other, and a run that saves and resumes the discriminator exactly."""

from __future__ import annotations

import pytest
import torch

from engine.convert import batch_to_network
from engine.unet import PConvUNet, UNetConfig
from tests.trainer.conftest import WIDTHS
from trainer import loop
from trainer.__main__ import build_parser
from trainer.adversarial import (
    Adversary,
    PatchDiscriminator,
    hinge_discriminator_loss,
    hinge_generator_loss,
    hole_share,
    shield_rim,
)
from trainer.checkpoint import load_checkpoint
from trainer.config import ADVERSARIAL_ON, DISC_FAKES, DISC_INPUTS, TrainConfig
from trainer.data import InpaintingDataset
from trainer.loop import train
from trainer.losses import InpaintingLoss, LossWeights, describe_balance, loss_balance
from trainer.native import NativeCrops
from trainer.step import TrainStep


def _batch(n: int = 4, size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth images in [-1, 1] and hole maps (1 = hole) of a square in the middle."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 3, 4, 4, generator=g) * 2 - 1
    images = torch.nn.functional.interpolate(small, size=(size, size), mode="bicubic").clamp(-1, 1)
    hole = torch.zeros(n, 1, size, size)
    hole[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1.0
    return images, hole


def test_discriminator_scores_patches_sees_the_hole_map_and_is_spectrally_normalised():
    torch.manual_seed(0)
    d = PatchDiscriminator(width=8)
    images, hole = _batch(2, 128)
    for _ in range(30):  # power iterations run in training mode
        scores = d(images, hole)
    assert scores.shape == (2, 1, 2, 2)  # six stride-2 layers: one score per 64 px of input
    assert not torch.allclose(d(images, hole), d(images, torch.zeros_like(hole)))
    for conv in d.convs:
        w = conv.weight.detach().flatten(1)
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="width"):
        PatchDiscriminator(width=0)
    local = PatchDiscriminator(width=8, layers=4)
    assert local(images, hole).shape == (2, 1, 8, 8)
    assert "4 layers (one score per 16 px, each seeing 61 px)" in local.describe()
    adversary = Adversary(PatchDiscriminator(width=8), lr=1e-3)
    with pytest.raises(ValueError, match="--disc-layers: the checkpoint's discriminator has 6, this run 4"):
        Adversary(local, lr=1e-3).load_state_dict(adversary.state_dict())
    with pytest.raises(ValueError, match="--disc-width: the checkpoint's discriminator has 8, this run 16"):
        Adversary(PatchDiscriminator(width=16), lr=1e-3).load_state_dict(adversary.state_dict())
    before = ("layers", "input", "fake")  # what a checkpoint from before those options lacks
    old = {k: v for k, v in adversary.state_dict().items() if k not in before}
    Adversary(PatchDiscriminator(width=8), lr=1e-3).load_state_dict(old)


def test_discriminator_shown_the_image_alone_ignores_the_hole_map():
    """--disc-input image (LaMa's discriminator): the same scores whatever the map, a 3-channel
    first layer, said in the log; a checkpoint's discriminator of the other kind is refused."""
    torch.manual_seed(0)
    blind = PatchDiscriminator(width=8, layers=4, input="image").eval()  # no power iterations
    images, hole = _batch(2, 64)
    assert blind.convs[0].weight.shape[1] == 3
    assert torch.equal(blind(images, hole), blind(images, torch.zeros_like(hole)))
    assert blind(images, hole).shape == (2, 1, 4, 4)
    assert "shown the image alone" in blind.describe()
    assert "shown the image and the hole map" in PatchDiscriminator(width=8, layers=4).describe()
    with pytest.raises(ValueError, match="input is one of image\\+hole, image"):
        PatchDiscriminator(width=8, input="hole")
    seeing = Adversary(PatchDiscriminator(width=8, layers=4), lr=1e-3)
    with pytest.raises(ValueError, match="--disc-input: the checkpoint's discriminator has image\\+hole"):
        Adversary(blind, lr=1e-3).load_state_dict(seeing.state_dict())
    again = Adversary(PatchDiscriminator(width=8, layers=4, input="image"), lr=1e-3)
    again.load_state_dict(Adversary(blind, lr=1e-3).state_dict())
    assert torch.equal(again.module.eval()(images, hole), blind(images, hole))
    for choice in DISC_INPUTS:  # the command line offers what the config accepts
        args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--disc-input", choice])
        assert args.disc_input == choice


def test_hinge_losses():
    real, fake = torch.full((2, 1, 3, 3), 2.0), torch.full((2, 1, 3, 3), -2.0)
    assert hinge_discriminator_loss(real, fake).item() == 0.0  # both beyond the margin
    assert hinge_discriminator_loss(real * 0, fake * 0).item() == pytest.approx(2.0)
    assert hinge_discriminator_loss(-real, -fake).item() == pytest.approx(6.0)
    assert hinge_generator_loss(torch.tensor([[1.0, 3.0]])).item() == pytest.approx(-2.0)


def test_disc_fake_hole_targets_each_patch_by_its_share_of_the_hole():
    """--disc-fake hole (LaMa's mask_as_fake_target): a composite's patches are fake by their
    share of the hole and real elsewhere, and the generator's term is taken on the hole's."""
    # 4 layers: score j sits on pixel 16 j (the centre of what it sees), so its cell is 16 j - 8
    # to 16 j + 8, the first cut by the border
    probe = PatchDiscriminator(width=4, layers=4, input="image").eval()
    x = torch.zeros(1, 3, 128, 128, requires_grad=True)
    probe(x, torch.zeros(1, 1, 128, 128))[0, 0, 3, 3].backward()
    seen = x.grad.abs().sum((0, 1, 3)).nonzero().squeeze(1)
    assert (seen.min() + seen.max()).item() == 2 * 48 and seen.max() - seen.min() == 60
    hole = torch.zeros(1, 1, 64, 64)
    hole[..., 8:40, 8:40] = 1.0  # cells 1 and 2 whole
    share = hole_share(hole, torch.zeros(1, 1, 4, 4), 16)
    expected = torch.zeros(1, 1, 4, 4)
    expected[..., 1:3, 1:3] = 1.0
    assert torch.equal(share, expected)
    band = torch.zeros(1, 1, 64, 64)
    band[..., 8:16, :] = 1.0  # half of cell 1's rows; cell 0 (rows 0-7 inside the border) has none
    assert hole_share(band, torch.zeros(1, 1, 4, 4), 16)[0, 0, :, 0].tolist() == [0.0, 0.5, 0.0, 0.0]
    with pytest.raises(ValueError, match="a hole map has one channel, got 3"):
        hole_share(hole.expand(1, 3, 64, 64), torch.zeros(1, 1, 4, 4), 16)
    real = torch.ones(1, 1, 4, 4)
    fake = 1.0 - 2.0 * expected  # -1 on the fill, +1 around it: what a perfect judge says
    assert hinge_discriminator_loss(real, fake, share).item() == 0.0
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx(1.5)  # all fake: 12 cells wrong
    # each class on its own: calling everything real is no better than a coin toss, and the
    # fill's cells weigh as much as all the others (a wrong fill cell costs 2, a wrong other 2/28)
    assert hinge_discriminator_loss(real, torch.ones(1, 1, 4, 4), share).item() == pytest.approx(2.0)
    assert hinge_discriminator_loss(real * 0, fake * 0, share).item() == pytest.approx(2.0)
    one_wrong = fake.clone()
    one_wrong[0, 0, 1, 1] = 1.0
    assert hinge_discriminator_loss(real, one_wrong, share).item() == pytest.approx(0.5)
    one_wrong = fake.clone()
    one_wrong[0, 0, 0, 0] = -1.0
    assert hinge_discriminator_loss(real, one_wrong, share).item() == pytest.approx(2 / 28)
    assert hinge_generator_loss(fake, share).item() == pytest.approx(1.0)  # the fill's patches only
    assert hinge_generator_loss(fake).item() == pytest.approx(-0.5)
    # trained on photos and flat fills, it scores the fill's patches below the photo around them
    torch.manual_seed(0)
    judge = Adversary(PatchDiscriminator(width=8, layers=4, input="image"), lr=2e-3, fake="hole")
    real, hole = _batch(8, 64, seed=1)
    real = real + 0.3 * torch.randn_like(real)
    comp = real * (1 - hole) + real.mean(dim=(2, 3), keepdim=True) * hole
    first = judge.update(real, comp, hole)
    late = _late_losses(judge, real, comp, hole)
    assert late["disc"] < 0.5 * first["disc"]
    scores = judge.module.eval()(comp, hole)
    inside = hole_share(hole, scores, 16) == 1.0
    on_fill = hinge_generator_loss(scores, hole_share(hole, scores, 16))  # the generator's term
    assert torch.allclose(judge.generator_loss(comp, hole), on_fill)
    assert on_fill > hinge_generator_loss(scores) + 0.5
    assert scores[inside].mean() < scores[~inside].mean() - 1.0
    assert late["disc_fake"] < late["disc_real"]
    assert "fake by their share of the hole" in judge.describe()
    assert "share of the hole" not in Adversary(PatchDiscriminator(width=8), lr=1e-3).describe()
    # a checkpoint's game is kept: the other target is refused, one from before --disc-fake is the composite
    blind = PatchDiscriminator(width=8, layers=4, input="image")
    with pytest.raises(
        ValueError, match="--disc-fake: the checkpoint's discriminator has hole, this run composite"
    ):
        Adversary(blind, lr=1e-3).load_state_dict(judge.state_dict())
    before = {k: v for k, v in Adversary(blind, lr=1e-3).state_dict().items() if k != "fake"}
    with pytest.raises(ValueError, match="--disc-fake: the checkpoint's discriminator has composite"):
        Adversary(blind, lr=1e-3, fake="hole").load_state_dict(before)
    with pytest.raises(ValueError, match="--disc-fake is one of composite, hole"):
        Adversary(blind, lr=1e-3, fake="fill")
    with pytest.raises(ValueError, match="--disc-fake must be one of composite, hole"):
        TrainConfig(data="d", out="o", disc_fake="fill")
    for choice in DISC_FAKES:  # the command line offers what the config accepts
        args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--disc-fake", choice])
        assert args.disc_fake == choice


def test_adversarial_rim_keeps_the_generators_term_off_the_fills_edge():
    """With --adversarial-rim R the term's gradient reaches the fill's pixels more than R px
    (chessboard) from the photo and none nearer; the discriminator sees the same values."""
    hole = torch.zeros(1, 1, 64, 64)
    hole[..., 16:48, 20:52] = 1.0
    comp = torch.rand(1, 3, 64, 64, requires_grad=True)
    shielded = shield_rim(comp, hole, 4)
    assert torch.equal(shielded, comp) and shield_rim(comp, hole, 0) is comp
    shielded.sum().backward()
    reached = comp.grad[0, 0] > 0
    inner = torch.zeros(64, 64, dtype=torch.bool)
    inner[20:44, 24:48] = True  # the hole less its outer 4 px
    assert torch.equal(reached, inner | (hole[0, 0] == 0))  # outside the hole it changes nothing

    torch.manual_seed(0)
    for rim, expect_rim_grad in ((0, True), (4, False)):
        judge = Adversary(PatchDiscriminator(width=8, layers=4, input="image"), lr=1e-3, fake="hole", rim=rim)
        comp = torch.rand(2, 3, 64, 64, requires_grad=True)
        judge.generator_loss(comp, hole.expand(2, 1, 64, 64)).backward()
        g = comp.grad.abs().sum(dim=(0, 1))
        on_rim = (hole[0, 0] > 0) & ~inner
        assert bool(g[on_rim].sum() > 0) is expect_rim_grad
        assert g[inner].sum() > 0
    assert "kept off the fill's outer 4 px" in judge.describe()
    with pytest.raises(ValueError, match="--adversarial-rim must be in"):
        TrainConfig(data="d", out="o", adversarial_weight=0.1, adversarial_rim=-1)
    args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--adversarial-rim", "6"])
    assert args.adversarial_rim == 6


def test_discriminator_updates_learn_to_tell_flat_fills_from_photos():
    torch.manual_seed(0)
    adversary = Adversary(PatchDiscriminator(width=8), lr=2e-3)
    real, hole = _batch(8, 64, seed=1)
    real = real + 0.3 * torch.randn_like(real)  # texture the fills lack
    fake = real * (1 - hole) + real.mean(dim=(2, 3), keepdim=True) * hole  # a flat fill
    first = adversary.update(real, fake, hole)
    late = _late_losses(adversary, real, fake, hole)
    assert late["disc"] < 0.5 * first["disc"]
    assert late["disc_real"] > late["disc_fake"]


def _late_losses(
    adversary: Adversary, real: torch.Tensor, fake: torch.Tensor, hole: torch.Tensor
) -> dict[str, float]:
    """The discriminator's logged losses averaged over the last 20 of 80 updates: the game
    oscillates, and one update's loss depends on the thread count (the 40th spiked to 1.31 with
    two threads, 0.68 with one)."""
    history = [adversary.update(real, fake, hole) for _ in range(80)]
    return {k: sum(float(h[k]) for h in history[-20:]) / 20 for k in ("disc", "disc_fake", "disc_real")}


def _step(
    adversarial: float, *, warmup: int = 0, at: int = 0, judged: torch.Tensor | None = None
) -> tuple[dict[str, torch.Tensor], PConvUNet, Adversary, dict[str, torch.Tensor]]:
    """One step (number ``at``) of a tiny model and discriminator (the same initial weights for
    any weight) on a batch of 3; returns the terms, both networks after it, and the
    discriminator's state before it."""
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(widths=WIDTHS, kernels=(7, 5, 3, 3), image_size=64))
    adversary = Adversary(PatchDiscriminator(width=4), lr=1e-3, warmup=warmup)
    d_before = {k: v.clone() for k, v in adversary.module.state_dict().items()}
    loss = InpaintingLoss(None, weights=LossWeights(adversarial=adversarial), mode="l1")
    step = TrainStep(
        model,
        loss,
        torch.optim.Adam(model.parameters(), lr=1e-3),
        None,
        torch.amp.GradScaler("cpu", enabled=False),
        device=torch.device("cpu"),
        autocast_dtype=None,
        channels_last=False,
        adversary=adversary,
    )
    images, hole = _batch(3, 64, seed=2)
    uint8 = ((images + 1) * 127.5).round().to(torch.uint8)
    return step(uint8, hole.bool(), step=at, judged=judged), model, adversary, d_before


def test_the_step_adds_the_weighted_adversarial_term_and_updates_the_discriminator():
    terms, model, adversary, d_before = _step(0.5)
    assert {"adversarial", "disc", "disc_real", "disc_fake"} <= terms.keys()
    w = LossWeights()
    expected = w.valid * terms["valid"] + w.hole * terms["hole"] + w.tv * terms["tv"]
    assert terms["total"].item() == pytest.approx((expected + 0.5 * terms["adversarial"]).item(), rel=1e-5)
    d_after = adversary.module.state_dict()
    assert any(not torch.equal(d_before[k], d_after[k]) for k in d_before if k.endswith("original"))
    # the adversarial gradient reaches the generator: without it the same step moves it elsewhere;
    # the generator's pass leaves nothing in the discriminator's update: its step is the same
    _, plain, plain_adversary, _ = _step(0.0)
    assert any(not torch.equal(plain.state_dict()[k], v) for k, v in model.state_dict().items())
    plain_d = plain_adversary.module.state_dict()
    assert all(torch.equal(plain_d[k], v) for k, v in d_after.items())
    named = {k: float(v) for k, v in terms.items()}
    shares = loss_balance(named, LossWeights(adversarial=0.5))
    assert 0 < shares["adversarial"] < 1
    assert sum(shares[k] for k in ("hole", "valid", "tv", "adversarial")) == pytest.approx(1.0)
    assert "adversarial" in describe_balance(named, LossWeights(adversarial=0.5))


def test_the_warm_up_trains_the_discriminator_alone_then_ramps_the_term_in():
    adversary = Adversary(PatchDiscriminator(width=4), lr=1e-3, warmup=4)
    assert [adversary.ramp(s) for s in (0, 3, 4, 5, 6, 7, 100)] == [0, 0, 0.25, 0.5, 0.75, 1, 1]
    assert Adversary(PatchDiscriminator(width=4), lr=1e-3).ramp(0) == 1.0
    # inside the warm-up the generator takes the step it takes without the term, the
    # discriminator still learns; in the ramp the term counts at its share
    plain = _step(0.0)[1].state_dict()
    _, warming, adversary, d_before = _step(0.5, warmup=4, at=3)
    assert all(torch.equal(plain[k], v) for k, v in warming.state_dict().items())
    assert any(not torch.equal(d_before[k], v) for k, v in adversary.module.state_dict().items())
    ramped, _, _, _ = _step(0.5, warmup=4, at=6)
    base = ramped["total"] - 0.375 * ramped["adversarial"]
    w = LossWeights()
    expected = w.valid * ramped["valid"] + w.hole * ramped["hole"] + w.tv * ramped["tv"]
    assert base.item() == pytest.approx(expected.item(), rel=1e-5)


def test_an_adversarial_run_saves_and_resumes_its_discriminator_exactly(
    prepared, tmp_path, train_config, monkeypatch
):
    common = dict(
        steps=4,
        adversarial_weight=0.1,
        disc_width=4,
        disc_layers=4,
        disc_input="image",
        disc_fake="hole",
        disc_lr=3e-3,
        adversarial_warmup=2,  # off at steps 0-1, half at step 2 (where the resumed half starts)
        adversarial_rim=3,
        log_every=1,
        masks="center:1,strokes:1",
    )
    seen: list[int] = []

    class Recording(TrainStep):
        def __call__(self, images, holes, *, step, judged=None):
            seen.append(step)
            assert judged is None  # --adversarial-on all: every sample
            return super().__call__(images, holes, step=step, judged=judged)

    monkeypatch.setattr(loop, "TrainStep", Recording)
    train(train_config(prepared, tmp_path / "whole", **common))
    train(train_config(prepared, tmp_path / "split", stop_after=2, **common))
    train(train_config(prepared, tmp_path / "split", resume=True, **common))
    assert seen == [0, 1, 2, 3, 0, 1, 2, 3]  # the phase's 0-based step; a resume continues it
    a = load_checkpoint(tmp_path / "whole" / "ckpt.pt")
    b = load_checkpoint(tmp_path / "split" / "ckpt.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    da, db = a["discriminator"], b["discriminator"]
    assert da["width"] == 4
    for key in da["model"]:
        assert torch.equal(da["model"][key], db["model"][key]), key
    assert a["lineage"][-1]["disc_width"] == 4 and a["lineage"][-1]["loss_weights"]["adversarial"] == 0.1
    assert a["lineage"][-1]["disc_layers"] == 4 and da["layers"] == 4
    assert a["lineage"][-1]["disc_input"] == "image" and da["input"] == "image"
    assert a["lineage"][-1]["disc_fake"] == "hole" and da["fake"] == "hole"
    assert da["model"]["convs.0.parametrizations.weight.original"].shape[1] == 3  # no hole map
    assert a["lineage"][-1]["disc_lr"] == 3e-3 and a["lineage"][-1]["adversarial_warmup"] == 2
    assert a["lineage"][-1]["adversarial_rim"] == 3
    assert [g["lr"] for g in da["optimizer"]["param_groups"]] == [3e-3]
    # the loop tells the step where it is: a warm-up longer than the run never lets the term in
    train(train_config(prepared, tmp_path / "cold", **{**common, "adversarial_warmup": 10}))
    cold = load_checkpoint(tmp_path / "cold" / "ckpt.pt")["model"]
    assert any(not torch.equal(cold[k], v) for k, v in a["model"].items())
    with pytest.raises(ValueError, match="disc-lr"):
        train_config(prepared, tmp_path / "bad", **{**common, "disc_lr": 0.0})
    with pytest.raises(ValueError, match="adversarial-warmup"):
        train_config(prepared, tmp_path / "bad", **{**common, "adversarial_warmup": -1})
    log = (tmp_path / "split" / "train.log").read_text()
    assert "SN-PatchGAN discriminator, width 4, hinge loss, 4 layers" in log
    assert "shown the image alone, a composite's patches fake by their share of the hole" in log
    assert "and real elsewhere, lr 0.003, alone for steps 0-1" in log
    assert "the generator's term kept off the fill's outer 3 px" in log
    balance = [line.split("weighted loss", 1)[1] for line in log.splitlines() if "weighted loss" in line]
    assert "adversarial 0% (weight 0)" in balance[0]  # step 1: still warming up
    assert "(weight 0.05)" in balance[-1]  # the resumed half's first window, step 3: half of 0.1
    # a run without the term saves none
    train(train_config(prepared, tmp_path / "plain", steps=1))
    assert load_checkpoint(tmp_path / "plain" / "ckpt.pt")["discriminator"] is None


def test_adversarial_on_native_plays_the_game_on_the_judged_samples_only(monkeypatch):
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    forward = PatchDiscriminator.forward

    def recording(self, image, hole):
        seen.append((image.detach().clone(), hole.detach().clone()))
        return forward(self, image, hole)

    monkeypatch.setattr(PatchDiscriminator, "forward", recording)
    terms, model, _, _ = _step(0.5, judged=torch.tensor([True, False, True]))
    (generator_images, _), (d_images, d_holes) = seen  # the generator's term, then the update
    assert generator_images.shape[0] == 2 and d_images.shape[0] == 4  # 2 real + 2 composites
    images, hole = _batch(3, 64, seed=2)
    gt, _ = batch_to_network(((images + 1) * 127.5).round().to(torch.uint8), hole.bool(), "cpu")
    assert torch.equal(d_images[:2], gt[[0, 2]])
    assert torch.equal(d_holes[:2], hole[[0, 2]]) and torch.equal(d_holes[2:], hole[[0, 2]])
    known = 1 - d_holes[2:]  # the composites keep the judged photos' own pixels outside the hole
    assert torch.equal(d_images[2:] * known, gt[[0, 2]] * known)
    # every sample judged is the default; judging a subset changes the step
    seen.clear()
    every, every_model, _, _ = _step(0.5)
    assert [x.shape[0] for x, _ in seen] == [3, 6]
    same, same_model, _, _ = _step(0.5, judged=torch.ones(3, dtype=torch.bool))
    assert same["total"].item() == every["total"].item()
    assert all(torch.equal(same_model.state_dict()[k], v) for k, v in every_model.state_dict().items())
    assert terms["adversarial"].item() != every["adversarial"].item()
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in every_model.state_dict().items())
    with pytest.raises(ValueError, match="no sample"):
        _step(0.5, judged=torch.zeros(3, dtype=torch.bool))


def test_a_run_with_adversarial_on_native_judges_the_native_crops_of_each_batch(
    prepared, tmp_path, train_config, monkeypatch
):
    common = dict(
        steps=3,
        batch_size=3,
        native_share=0.4,  # 1.2 native crops per batch: one or two, in changing places
        adversarial_weight=0.1,
        adversarial_on="native",
        disc_width=4,
        disc_layers=4,
        masks="brush:1,center:1",
        val_every=0,
    )
    seen: list[list[bool]] = []
    natives: list[bool] = []

    class Recording(TrainStep):
        def __call__(self, images, holes, *, step, judged=None):
            seen.append(judged.tolist())
            return super().__call__(images, holes, step=step, judged=judged)

    get_item, crop = InpaintingDataset.__getitem__, NativeCrops.__call__
    made: list[bool] = []

    def recording_crop(self, rng, index):
        made[-1] = True
        return crop(self, rng, index)

    def recording_item(self, key):  # whether the dataset cut a native crop, in loader order
        made.append(False)
        out = get_item(self, key)
        natives.append(made[-1])
        return out

    monkeypatch.setattr(loop, "TrainStep", Recording)
    monkeypatch.setattr(InpaintingDataset, "__getitem__", recording_item)
    monkeypatch.setattr(NativeCrops, "__call__", recording_crop)
    train(train_config(prepared, tmp_path / "run", **common))
    # positions 0-8, native where floor(0.4 (p + 1)) > floor(0.4 p): 2, 4 and 7
    assert seen == [[False, False, True], [False, True, False], [False, True, False]]
    assert [b for batch in seen for b in batch] == natives
    ckpt = load_checkpoint(tmp_path / "run" / "ckpt.pt")
    assert ckpt["lineage"][-1]["adversarial_on"] == "native" and ckpt["config"]["adversarial_on"] == "native"
    assert "played on the native crops only" in (tmp_path / "run" / "train.log").read_text()
    # every batch needs a sample to judge; the choice is one of the two
    for bad in (dict(native_share=0.0), dict(native_share=0.3), dict(adversarial_on="squares")):
        with pytest.raises(ValueError, match="adversarial-on"):
            train_config(prepared, tmp_path / "bad", **{**common, **bad})
    assert train_config(prepared, tmp_path / "ok", **{**common, "native_share": 1 / 3}).native_share == 1 / 3
    for choice in ADVERSARIAL_ON:  # the command line offers what the config accepts
        args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--adversarial-on", choice])
        assert args.adversarial_on == choice
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--data", "d", "--out", "o", "--adversarial-on", "squares"])
