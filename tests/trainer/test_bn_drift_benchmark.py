"""benchmarks/bn_drift.py (the sixth round in docs/training-rounds.md) must move the BatchNorm statistics of its
scope and nothing else, or its figures would measure something other than the drift."""

import torch

from engine.weights import load_weights
from trainer.loop import training_data


def test_drift_moves_only_the_batchnorm_statistics_of_its_scope(
    prepared, tmp_path, train_config, tiny_weights, benchmark_script
):
    bench = benchmark_script("bn_drift")
    before = load_weights(tiny_weights)[0].state_dict()
    config = train_config(prepared, tmp_path / "unused", masks="center:0.5,strokes:0.5", batch_size=2)
    dataset = training_data(config)[3]
    for keep in bench.SCOPES.values():
        drifted = bench.drift(tiny_weights, config, dataset, 3, keep)
        assert not drifted.training
        after = drifted.state_dict()
        changed = {k for k in before if not torch.equal(before[k], after[k])}
        assert any(k.startswith("decoder.") for k in changed)
        assert all(".bn.running_" in k or k.endswith(".bn.num_batches_tracked") for k in changed), changed
        assert any(k.startswith("encoder.") for k in changed) == (keep is None)


def test_a_drifted_copy_fills_at_the_strength_of_the_model_it_came_from(
    tiny_weights, tmp_path, benchmark_script
):
    """The comparison is the model against its drifted copies: each copy keeps the file's own
    texture strength, or the figures would mix a texture change into the drift."""
    from engine.weights import read_weights_info, save_weights

    bench = benchmark_script("bn_drift")
    model = load_weights(tiny_weights)[0]
    source = save_weights(tmp_path / "own.safetensors", model, texture=0.5)
    bench.save_drifted(tmp_path / "drifted.safetensors", model, source, "every statistic", {"batches": 3})
    info = read_weights_info(tmp_path / "drifted.safetensors")
    assert info.texture == 0.5 and info.name == "every statistic"
