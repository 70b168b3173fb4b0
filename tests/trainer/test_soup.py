"""retoucher-train soup: the weighted average of models' weights in one weight file."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from engine.unet import PConvUNet
from engine.weights import load_weights, read_weights_info, save_weights
from trainer.__main__ import main
from trainer.soup import average_state, soup, soup_weights


def _random_file(path, config, seed, *, half=False, texture=None, recipe=()):
    torch.manual_seed(seed)
    model = PConvUNet(config).eval()
    with torch.no_grad():  # BatchNorm statistics and step counters that differ between the models too
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(100 * seed)
    provenance = {"note": f"seed {seed}", "recipe": list(recipe)}
    return save_weights(path, model, provenance, name=path.stem, half=half, texture=texture)


def test_the_soup_is_the_weighted_mean_of_every_tensor(tiny_config, tmp_path):
    a = _random_file(tmp_path / "a.safetensors", tiny_config, 1)
    b = _random_file(tmp_path / "b.safetensors", tiny_config, 2)
    out, prov = soup([a, b], tmp_path / "ab.safetensors", weights=[3, 1])
    ma, _ = load_weights(a)
    mb, _ = load_weights(b)
    ms, info = load_weights(out)
    sa, sb = ma.state_dict(), mb.state_dict()
    for key, t in ms.state_dict().items():
        if t.is_floating_point():
            torch.testing.assert_close(t, 0.75 * sa[key] + 0.25 * sb[key], rtol=1e-6, atol=1e-7)
        else:
            assert torch.equal(t, sa[key])
    assert [i["weight"] for i in prov["soup"]] == [0.75, 0.25]
    assert [i["provenance"]["note"] for i in info.provenance["soup"]] == ["seed 1", "seed 2"]
    assert info.dtype == "float32" and info.texture == 0.0  # a soup names no strength unless told

    x = torch.rand(1, 3, 32, 32)
    valid = torch.ones(1, 1, 32, 32)
    valid[..., 8:20, 8:20] = 0
    with torch.no_grad():
        ya, yb, ys = (m(x * valid, valid) for m in (ma, mb, ms))
    assert not torch.allclose(ys, ya, atol=1e-3) and not torch.allclose(ys, yb, atol=1e-3)


def test_a_weight_of_one_gives_back_that_model(tiny_config, tmp_path):
    a = _random_file(tmp_path / "a.safetensors", tiny_config, 1)
    b = _random_file(tmp_path / "b.safetensors", tiny_config, 2)
    out, _ = soup([a, b], tmp_path / "b2.safetensors", weights=[0, 1])
    for key, t in load_weights(out)[0].state_dict().items():
        assert torch.equal(t, load_weights(b)[0].state_dict()[key]), key  # step counters too


def test_the_recipe_keeps_the_shared_phases_and_each_ingredients_own(tiny_config, tmp_path):
    """Siblings of one parent: the parent's phases, then one soup entry with each one's own, whose
    steps are the longest; a fine-tune started from the soup counts all of them."""
    from trainer.checkpoint import load_init

    parent = [{"phase": "train", "steps": 1000, "seed": 0}]
    a = _random_file(tmp_path / "a.safetensors", tiny_config, 1, recipe=[*parent, {"steps": 200, "seed": 1}])
    b = _random_file(tmp_path / "b.safetensors", tiny_config, 2, recipe=[*parent, {"steps": 300, "seed": 2}])
    out, prov = soup([a, b], tmp_path / "ab.safetensors")
    recipe = prov["recipe"]
    assert recipe[0] == parent[0] and recipe[1]["phase"] == "soup" and len(recipe) == 2
    assert [i["recipe"] for i in recipe[1]["soup"]] == [
        [{"steps": 200, "seed": 1}],
        [{"steps": 300, "seed": 2}],
    ]
    assert prov["steps"] == 1300
    _, _, lineage = load_init(str(out))
    assert lineage == recipe


def test_checkpoints_fp16_and_texture(tiny_config, trained_run, tmp_path, capsys):
    """A checkpoint's EMA weights mix with weight files; all-fp16 ingredients give an fp16 file;
    --texture names the strength; the CLI says what it mixed."""
    from trainer.checkpoint import load_checkpoint, model_from_checkpoint

    ckpt = trained_run / "ckpt.pt"
    config = model_from_checkpoint(load_checkpoint(ckpt)).config
    h1 = _random_file(tmp_path / "h1.safetensors", config, 1, half=True)
    h2 = _random_file(tmp_path / "h2.safetensors", config, 2, half=True)
    out = tmp_path / "half.safetensors"
    assert main(["soup", str(h1), str(h2), "--out", str(out), "--texture", "0.5", "--weights", "3", "1"]) == 0
    assert "0.75 " in capsys.readouterr().out
    info = read_weights_info(out)
    assert info.dtype == "float16" and info.texture == 0.5
    s1, s2 = load_weights(h1)[0].state_dict(), load_weights(h2)[0].state_dict()
    for key, t in load_weights(out)[0].state_dict().items():  # mixed in float, stored fp16
        if t.is_floating_point():
            torch.testing.assert_close(t, (0.75 * s1[key] + 0.25 * s2[key]).half().float())
    f32 = _random_file(tmp_path / "f32.safetensors", config, 3)
    assert main(["soup", str(f32), str(h1), "--out", str(tmp_path / "s32.safetensors")]) == 0
    assert read_weights_info(tmp_path / "s32.safetensors").dtype == "float32"
    assert main(["soup", str(f32), str(h1), "--out", str(tmp_path / "s16.safetensors"), "--half"]) == 0
    assert read_weights_info(tmp_path / "s16.safetensors").dtype == "float16"

    mixed = tmp_path / "mixed.safetensors"
    assert main(["soup", str(ckpt), str(h1), "--out", str(mixed), "--weights", "1", "1"]) == 0
    info = read_weights_info(mixed)
    assert info.dtype == "float32"
    assert info.provenance["soup"][0]["provenance"]["weights"] == "EMA"
    ema = model_from_checkpoint(load_checkpoint(ckpt)).state_dict()
    half1 = load_weights(h1)[0].state_dict()
    key = next(k for k, t in ema.items() if t.is_floating_point() and t.ndim == 4)
    torch.testing.assert_close(load_weights(mixed)[0].state_dict()[key], (ema[key] + half1[key]) / 2)


def test_bad_soups_are_refused_and_write_nothing(tiny_config, tmp_path, capsys):
    a = _random_file(tmp_path / "a.safetensors", tiny_config, 1)
    b = _random_file(tmp_path / "b.safetensors", tiny_config, 2)
    wide = dataclasses.replace(tiny_config, widths=tuple(w * 2 for w in tiny_config.widths))
    c = _random_file(tmp_path / "c.safetensors", wide, 3)
    out = tmp_path / "out.safetensors"
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(a.read_bytes()[:500])
    for argv, message in (
        ([str(a), str(c)], "another architecture"),
        ([str(a)], "at least two models"),
        ([str(a), str(b), "--weights", "1"], "one weight per model"),
        ([str(a), str(b), "--weights", "1", "-1"], "at least 0"),
        ([str(a), str(b), "--weights", "0", "0"], "must not all be 0"),
        ([str(a), str(b), "--weights", "nan", "1"], "finite"),
        ([str(a), str(b), "--texture", "-1"], "texture"),
        ([str(a), str(tmp_path / "missing.safetensors")], "not found"),
        ([str(a), str(corrupt)], "corrupt.safetensors"),
    ):
        assert main(["soup", *argv, "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists()
    # a weight file under a checkpoint's name was written, and read as a checkpoint afterwards
    assert main(["soup", str(a), str(b), "--out", str(tmp_path / "soup.pt")]) == 2
    assert "a weight file's name ends in .safetensors" in capsys.readouterr().err
    assert not (tmp_path / "soup.pt").exists()


def test_soup_weights_and_average_state_check_their_inputs():
    assert soup_weights(4, None) == [0.25] * 4
    assert soup_weights(2, [1, 3]) == [0.25, 0.75]
    assert soup_weights(2, [1e308, 1e308]) == [0.5, 0.5]  # the sum would overflow
    with pytest.raises(ValueError, match="finite"):
        soup_weights(2, [float("nan"), 1])
    with pytest.raises(ValueError, match="finite"):
        soup_weights(2, [float("inf"), 1])
    with pytest.raises(ValueError, match="NaN"):
        average_state([{"w": torch.tensor([float("nan")])}, {"w": torch.ones(1)}], [0.5, 0.5])
    one = {"w": torch.ones(2), "n": torch.tensor(3)}
    with pytest.raises(ValueError, match="other tensors"):
        average_state([one, {"w": torch.ones(2)}], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"\(3,\)"):
        average_state([one, {"w": torch.ones(3), "n": torch.tensor(3)}], [0.5, 0.5])
    avg = average_state([one, {"w": torch.zeros(2), "n": torch.tensor(5)}], [0.5, 0.5])
    assert avg["w"].tolist() == [0.5, 0.5] and avg["n"].item() == 3  # equals: the first's counter
    avg = average_state([one, {"w": torch.zeros(2), "n": torch.tensor(5)}], [0.25, 0.75])
    assert avg["w"].tolist() == [0.25, 0.25] and avg["n"].item() == 5  # the heaviest's counter
