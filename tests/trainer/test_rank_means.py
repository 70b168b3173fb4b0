"""Under torchrun, a loss term that is a mean over a rank's items (judged rows, hole shares,
images with a hole) must give, once DDP has averaged the ranks' gradients, the gradient of the
mean over every rank's items together: two gloo processes against one process holding them all."""

from __future__ import annotations

import os

import pytest
import torch

from tests.trainer.conftest import torchrun_two
from trainer.adversarial import hinge_discriminator_loss, hinge_generator_loss
from trainer.distributed import mean_over_ranks
from trainer.losses import hole_mse, hole_valid_l1

# Rank 0 holds 3 judged rows, rank 1 one (the game's rows differ by rank); the images of the
# hole-weighting case are 2 per rank, one of rank 0's without a hole.
ROWS = (3, 1)


def _items(rows: slice, images: slice) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    fake = torch.randn(4, 1, 5, 6, generator=g)[rows]
    real = torch.randn(4, 1, 5, 6, generator=g)[rows]
    share = torch.rand(4, 1, 5, 6, generator=g)[rows] * (torch.rand(4, 1, 5, 6, generator=g)[rows] > 0.5)
    out = torch.rand(4, 3, 8, 8, generator=g)[images]
    gt = torch.rand(4, 3, 8, 8, generator=g)[images]
    mask = torch.ones(4, 1, 8, 8)
    mask[1, :, 2:4, 3:5] = 0  # rank 0: no hole in its first image, a small one in its second
    mask[2, :, 1:4, 2:7] = 0  # rank 1: a larger one
    mask[3, :, 0:7, 0:8] = 0  # and a large one
    return {"fake": fake, "real": real, "share": share, "out": out, "gt": gt, "mask": mask[images]}


def _losses(items: dict[str, torch.Tensor], p: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each term, its inputs scaled by the shared parameter ``p`` (as a network's output
    depends on its weights)."""
    fake, real, share = items["fake"] * p, items["real"] * p, items["share"]
    out, gt, mask = items["out"] * p, items["gt"], items["mask"]
    return {
        "generator": hinge_generator_loss(fake),
        "generator_share": hinge_generator_loss(fake, share),
        "discriminator": hinge_discriminator_loss(real, fake),
        "discriminator_share": hinge_discriminator_loss(real, fake, share),
        "hole_image": hole_valid_l1(out, gt, mask, "image")[0],
        "hole_mse_image": hole_mse(out, gt, mask, "image"),
    }


def _gradients(items: dict[str, torch.Tensor]) -> dict[str, tuple[float, float]]:
    result = {}
    for name in _losses(items, torch.ones(())):
        p = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
        loss = _losses({k: v.double() for k, v in items.items()}, p)[name]
        (grad,) = torch.autograd.grad(loss, p)
        result[name] = (float(loss.detach()), float(grad))
    return result


_DRIVER = """
import json, sys
import torch, torch.distributed as dist
sys.path.insert(0, {root!r})
from tests.trainer.test_rank_means import ROWS, _gradients, _items
dist.init_process_group("gloo")
rank = dist.get_rank()
start = sum(ROWS[:rank])
mine = _gradients(_items(slice(start, start + ROWS[rank]), slice(2 * rank, 2 * rank + 2)))
averaged = {{}}
for name, (loss, grad) in mine.items():
    t = torch.tensor([loss, grad], dtype=torch.float64)
    dist.all_reduce(t)  # what DDP does with the gradients (and the run log with the losses)
    averaged[name] = (t / dist.get_world_size()).tolist()
if rank == 0:
    json.dump(averaged, open(sys.argv[1], "w"))
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_two_ranks_average_to_the_gradient_of_one_batch_of_all_their_items(tmp_path):
    import json

    driver = tmp_path / "driver.py"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    driver.write_text(_DRIVER.format(root=root))
    record = tmp_path / "averaged.json"
    torchrun_two(driver, str(record), timeout=180)
    averaged = json.loads(record.read_text())
    whole = _gradients(_items(slice(0, sum(ROWS)), slice(0, 4)))
    # float32 inside the hinge terms (they cast the scores): equal to about 1e-7
    wrong = {
        n: (averaged[n], want) for n, want in whole.items() if averaged[n] != pytest.approx(want, rel=1e-5)
    }
    assert not wrong, wrong


def test_one_process_is_a_world_of_one():
    value = torch.tensor([2.0, 3.0], requires_grad=True)
    mean = mean_over_ranks(value)
    assert torch.equal(mean, value.detach()) and not mean.requires_grad
