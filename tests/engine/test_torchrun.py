"""engine.torchrun (torchrun's variables, read in one place) and the torch-free engine modules."""

import subprocess
import sys

import pytest

from engine.torchrun import TorchrunEnv, torchrun_env


def test_single_process_defaults():
    assert torchrun_env({}) == TorchrunEnv(rank=0, world_size=1, local_rank=None, local_world_size=1)
    assert not torchrun_env({}).distributed and torchrun_env({}).is_main


def test_ranks_as_torchrun_sets_them():
    env = torchrun_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert env == TorchrunEnv(rank=3, world_size=4, local_rank=1, local_world_size=2)
    assert env.distributed and not env.is_main
    # several ranks without LOCAL_RANK: one node, the local rank is the rank
    assert torchrun_env({"RANK": "2", "WORLD_SIZE": "3"}).local_rank == 2


def test_torchrun_with_one_process_is_told_by_its_agents_run_id():
    """torchrun --nproc_per_node=1 sets WORLD_SIZE=1: a clean early stop must still exit 0 there
    (torchrun reports any other status as a failed rank)."""
    one = torchrun_env({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "TORCHELASTIC_RUN_ID": "x"})
    assert one.launched and not one.distributed
    assert not torchrun_env({"LOCAL_RANK": "0"}).launched  # a GPU index asked for by hand


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RANK": "x"}, "RANK must be an integer, got 'x'"),
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE must be an integer"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK=2 is not within WORLD_SIZE=2"),
        ({"WORLD_SIZE": "0"}, "not within WORLD_SIZE=0"),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ValueError, match=message):
        torchrun_env(env)


def test_torch_free_modules_do_not_load_torch():
    """A command line reads its rank and the format tables before it pays for torch, and the app
    a weight file's header; the engine package loads its torch modules only when one of its
    names that needs them is used."""
    code = (
        "import sys, engine, engine.torchrun, engine.formats, engine.atomic, engine.texture_strength\n"
        "import engine.unet_config, engine.weight_header\n"
        "import retoucher.batch.options, retoucher.batch.cli\n"
        "engine.UNetConfig, engine.WeightsError, engine.read_weights_info(engine.default_weights_path())\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "engine.Inpainter\n"
        "assert 'torch' in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
