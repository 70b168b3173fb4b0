import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from engine.unet import PConvUNet, UNetConfig
from engine.weights import WeightsError, load_weights, read_weights_info, save_weights

TINY = UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3), image_size=64)


def _model(seed=0, cfg=TINY):
    torch.manual_seed(seed)
    m = PConvUNet(cfg)
    # Non-trivial BatchNorm statistics, so that they are checked too.
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    return m.eval()


def test_round_trip_rebuilds_the_model_from_the_file_alone(tmp_path):
    model = _model()
    path = save_weights(tmp_path / "m.safetensors", model, {"steps": 12, "data": "synthetic"}, name="unit")
    loaded, info = load_weights(path)
    assert info.config == TINY and info.name == "unit"
    assert info.provenance == {"steps": 12, "data": "synthetic"}
    x, m = torch.randn(1, 3, 64, 64), (torch.rand(1, 1, 64, 64) > 0.3).float()
    with torch.no_grad():
        assert torch.equal(model(x, m), loaded(x, m))
    assert not loaded.training
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left behind"


def test_round_trip_with_a_refinement_head(tmp_path):
    import dataclasses

    cfg = dataclasses.replace(TINY, refine=4)
    model = _model(cfg=cfg)
    with torch.no_grad():
        model.refine.conv2.weight.normal_(std=0.1)  # a trained head, not the zero start
    loaded, info = load_weights(save_weights(tmp_path / "r.safetensors", model))
    assert info.config.refine == 4
    x, m = torch.randn(1, 3, 64, 64), (torch.rand(1, 1, 64, 64) > 0.3).float()
    with torch.no_grad():
        assert torch.equal(model(x, m), loaded(x, m))


def test_half_precision_file_is_smaller_and_close(tmp_path):
    model = _model()
    full = save_weights(tmp_path / "f.safetensors", model)
    half = save_weights(tmp_path / "h.safetensors", model, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, info = load_weights(half)
    assert info.dtype == "float16"
    x, m = torch.randn(1, 3, 64, 64), torch.ones(1, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x, m), loaded(x, m), rtol=0.02, atol=0.02)


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_weights(tmp_path / "nope.safetensors")


def test_corrupt_file(tmp_path):
    path = save_weights(tmp_path / "m.safetensors", _model())
    data = path.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError):
        load_weights(tmp_path / "trunc.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x07" * 100)
    with pytest.raises(WeightsError):
        load_weights(tmp_path / "junk.safetensors")


def test_nan_weights_rejected(tmp_path):
    model = _model()
    with torch.no_grad():
        model.encoder[0].pconv.conv.weight[0, 0, 0, 0] = float("nan")
    path = save_weights(tmp_path / "nan.safetensors", model)
    with pytest.raises(WeightsError, match="NaN"):
        load_weights(path)


def test_other_architecture_rejected(tmp_path):
    # Tensors of one architecture under the metadata of another.
    other = _model(cfg=UNetConfig(widths=(8, 16, 32, 16), kernels=(7, 5, 3, 3), image_size=64))
    path = save_weights(tmp_path / "m.safetensors", _model())
    meta_path = save_weights(tmp_path / "o.safetensors", other)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    with safe_open(str(meta_path), "pt") as f:
        meta = f.metadata()
    save_file(tensors, str(tmp_path / "mixed.safetensors"), metadata=meta)
    with pytest.raises(WeightsError, match="does not match the architecture"):
        load_weights(tmp_path / "mixed.safetensors")


def _rewritten(path, tmp_path, name, *, tensors=None, meta=None):
    """``path``'s tensors and metadata, changed by the ``tensors`` and ``meta`` functions."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        t, m = {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())
    out = tmp_path / name
    save_file(tensors(t) if tensors else t, str(out), metadata=meta(m) if meta else m)
    return out


@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8, torch.bool, torch.complex64])
def test_weights_not_stored_as_floating_point_are_refused(tmp_path, dtype):
    """An integer, boolean or complex weight was cast into the model without a word."""
    path = save_weights(tmp_path / "m.safetensors", _model())
    bad = _rewritten(
        path, tmp_path, "bad.safetensors", tensors=lambda t: {k: v.to(dtype) for k, v in t.items()}
    )
    with pytest.raises(WeightsError, match="not as floating point"):
        load_weights(bad)


def test_float8_weights_load_as_their_values(tmp_path):
    """Any floating type loads (float8 failed in the NaN check with an unclear error)."""
    path = save_weights(tmp_path / "m.safetensors", _model())
    f8 = _rewritten(
        path,
        tmp_path,
        "f8.safetensors",
        tensors=lambda t: {
            k: v.to(torch.float8_e4m3fn) if v.is_floating_point() else v for k, v in t.items()
        },
    )
    model, _ = load_weights(f8)
    ref, _ = load_weights(path)
    w, w_ref = model.encoder[0].pconv.conv.weight, ref.encoder[0].pconv.conv.weight
    torch.testing.assert_close(w, w_ref.to(torch.float8_e4m3fn).float())


def test_whole_numbers_written_as_floats_and_a_broken_provenance(tmp_path):
    """A config's 3.0 is 3 (it crashed in torch, or later in a tiled fill); 2.5 and a provenance
    that is not an object are refused with WeightsError."""
    path = save_weights(tmp_path / "m.safetensors", _model())

    def config_with(**changes):
        def edit(meta):
            cfg = json.loads(meta["config"])
            cfg.update(changes)
            return {**meta, "config": json.dumps(cfg)}

        return edit

    ok = _rewritten(path, tmp_path, "ok.safetensors", meta=config_with(decoder_kernel=3.0, image_size=64.0))
    info = read_weights_info(ok)
    assert info.config.decoder_kernel == 3 and type(info.config.image_size) is int
    load_weights(ok)
    frac = _rewritten(path, tmp_path, "frac.safetensors", meta=config_with(image_size=64.5))
    with pytest.raises(WeightsError, match="whole number"):
        read_weights_info(frac)
    listed = _rewritten(path, tmp_path, "prov.safetensors", meta=lambda m: {**m, "provenance": "[1, 2]"})
    with pytest.raises(WeightsError, match="provenance"):
        read_weights_info(listed)


def test_foreign_safetensors_rejected(tmp_path):
    save_file({"w": torch.zeros(3)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(WeightsError, match="not a Retoucher"):
        read_weights_info(tmp_path / "foreign.safetensors")


class _Boom:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


@pytest.mark.parametrize("zip_format", [True, False])
def test_pickle_is_refused_and_never_executed(tmp_path, monkeypatch, zip_format):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    if zip_format:
        torch.save({"payload": _Boom()}, path)
    else:
        path.write_bytes(pickle.dumps({"payload": _Boom()}))
    with pytest.raises(WeightsError, match="pickle"):
        load_weights(path)
    assert not (tmp_path / "PWNED").exists()


def test_header_length_ending_in_0x80_is_not_mistaken_for_a_pickle(tmp_path):
    """The first byte of a safetensors file is the low byte of its header length; 0x80 there
    must not trip the pickle detection."""
    model = _model()
    for n in range(64):
        path = save_weights(tmp_path / f"m{n}.safetensors", model, {"note": "x" * n})
        if path.read_bytes()[0] == 0x80:
            break
    else:
        pytest.fail("no header length ending in 0x80 found")
    loaded, info = load_weights(path)
    assert info.provenance["note"] == "x" * n


def test_crafted_config_is_refused_before_allocating(tmp_path):
    """Small tensors under metadata describing a huge network: refused from the shapes alone."""
    from safetensors import safe_open

    path = save_weights(tmp_path / "m.safetensors", _model())
    with safe_open(str(path), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = dict(f.metadata())
    huge = UNetConfig(widths=(2048,) * 6, kernels=(15,) * 6)
    meta["config"] = huge.to_json()
    save_file(tensors, str(tmp_path / "huge.safetensors"), metadata=meta)
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(WeightsError, match="does not match"):
        load_weights(tmp_path / "huge.safetensors")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, f"peak memory grew by {grown_mb:.0f} MB"


@pytest.mark.parametrize(
    "bad",
    [
        {"decoder_kernel": 4},
        {"image_size": 0},
        {"widths": [8, 100000], "kernels": [3, 3]},
        {"in_channels": 0},
        {"widths": [8] * 20, "kernels": [3] * 20},
    ],
)
def test_impossible_architectures_are_refused(tmp_path, bad):
    meta_cfg = {**TINY.to_dict(), **bad}
    with pytest.raises(ValueError):
        UNetConfig.from_dict(meta_cfg)
    from safetensors import safe_open

    path = save_weights(tmp_path / "m.safetensors", _model())
    with safe_open(str(path), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = dict(f.metadata())
    import json

    meta["config"] = json.dumps(meta_cfg)
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(WeightsError, match="architecture"):
        load_weights(tmp_path / "bad.safetensors")


def test_inpainter_refuses_a_non_rgb_model(tmp_path):
    from engine import Inpainter

    gray = PConvUNet(UNetConfig(widths=(8, 16), kernels=(3, 3), in_channels=1, out_channels=1))
    path = save_weights(tmp_path / "gray.safetensors", gray)
    with pytest.raises(WeightsError, match="RGB"):
        Inpainter(path, device="cpu")


def test_a_file_names_the_models_own_texture_strength(tmp_path):
    """The strength the model was evaluated at travels in the file; a file that names none (every
    file before v5) reads as TEXTURE; a strength the engine refuses makes the file unusable."""
    from engine.texture_strength import TEXTURE
    from engine.weights import FORMAT_NAME, FORMAT_VERSION, write_weight_file

    model = _model()
    assert read_weights_info(save_weights(tmp_path / "plain.safetensors", model)).texture == TEXTURE
    named = save_weights(tmp_path / "own.safetensors", model, texture=0.25)
    assert read_weights_info(named).texture == 0.25 and load_weights(named)[1].texture == 0.25
    with pytest.raises(ValueError, match="texture must be a number from 0 to 4"):
        save_weights(tmp_path / "bad.safetensors", model, texture=9.0)
    assert not (tmp_path / "bad.safetensors").exists()
    for bad in ("9", "nan", "-1", "grainy"):
        path = write_weight_file(
            tmp_path / "b.safetensors",
            model.state_dict(),
            FORMAT_NAME,
            FORMAT_VERSION,
            TINY.to_json(),
            extra={"texture": bad},
        )
        with pytest.raises(WeightsError, match="names a texture strength that cannot be used"):
            read_weights_info(path)


def test_a_weights_path_given_with_a_tilde_is_the_home_folders(monkeypatch, tmp_path):
    """Typed in the app's Preferences as ~/models/mine.safetensors it was "not found"."""
    from pathlib import Path

    from engine.weight_header import damage_weights_path, model_weights_path

    monkeypatch.setenv("HOME", str(tmp_path))
    assert model_weights_path("~/models/mine.safetensors") == tmp_path / "models" / "mine.safetensors"
    assert damage_weights_path("~/d.safetensors") == tmp_path / "d.safetensors"
    assert model_weights_path("rel/m.safetensors") == Path("rel/m.safetensors")
