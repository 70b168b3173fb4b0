"""scripts/device_kit.py: the training data carried to a GPU machine in parts, prepared there."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainer.manifest import read_manifest
from trainer.prepare import PrepareConfig, prepare


@pytest.fixture(scope="module")
def kit(repo_script):
    return repo_script("device_kit")


@pytest.fixture
def here(tmp_path, cub, make_masks):
    """A prepared CUB copy (with its missing, corrupt and discarded photos) and a mask folder, as
    on the packing machine."""
    data = tmp_path / "data"
    prepare(PrepareConfig(out=data, cub=cub.root, size=32, workers=1, progress=False))
    return data, make_masks(tmp_path / "masks", count=5, size=32)


def _part_bytes(data):
    """Small enough that the photos take several parts."""
    rows = read_manifest(data, "train")
    root = json.loads((data / "prepare.json").read_text())["settings"]["source"]
    return 3 * max((Path(root) / "images" / r.source).stat().st_size for r in rows) + 8000


def test_parts_unpacked_give_the_same_squares_and_split(kit, here, tmp_path):
    data, masks = here
    parts = kit.pack(data, tmp_path / "out", _part_bytes(data), masks, val_images=2)
    assert len(parts) >= 3
    for part in parts:  # none over the size, its listing included
        assert sum(f.stat().st_size for f in part.rglob("*") if f.is_file()) <= _part_bytes(data)
    listed = [rel for part in parts for rel in json.loads((part / "part.json").read_text())["files"]]
    assert len(listed) == len(set(listed))  # each file in one part
    box = tmp_path / "kit"
    for part in reversed(parts):  # any order
        kit.unpack(part, box)
    there = kit.finish(box, workers=1)

    train = read_manifest(data, "train")
    val = read_manifest(data, "val")
    got = read_manifest(there)
    assert [r.image_id for r in got] == sorted(
        [r.image_id for r in train] + [val[0].image_id, val[-1].image_id]
    )
    assert {r.image_id: r.split for r in got} == {r.image_id: r.split for r in train + [val[0], val[-1]]}
    for r in got:  # the squares prepared there are the ones here, pixel for pixel
        mine = np.asarray(Image.open(data / r.file))
        theirs = np.asarray(Image.open(there / r.file))
        assert np.array_equal(mine, theirs), r.file
    assert sorted(p.name for p in (box / "masks").iterdir()) == sorted(p.name for p in masks.iterdir())
    # native crops read the carried source photos, not the packing machine's
    from trainer.photo_eval import source_photos

    paths = dict(source_photos(there, "train", None))
    assert all(str(p).startswith(str(box)) and p.is_file() for p in paths.values())
    report = json.loads((there / "prepare.json").read_text())["report"]
    assert report["splits"]["train"] == len(train) and report["kept"] == len(got)


def test_prepare_refuses_until_every_part_is_in(kit, here, tmp_path):
    data, masks = here
    parts = kit.pack(data, tmp_path / "out", _part_bytes(data), masks)
    box = tmp_path / "kit"
    have, total = kit.unpack(parts[0], box)
    assert have == {1} and total == len(parts)
    with pytest.raises(kit.KitError, match=r"parts \[2"):
        kit.finish(box)
    assert not (box / "data").exists()


def test_pack_refuses_a_file_larger_than_a_part_and_a_folder_not_a_kit(kit, here, tmp_path):
    data, masks = here
    with pytest.raises(kit.KitError, match="larger than a part"):
        kit.pack(data, tmp_path / "out", 1000, masks)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(kit.KitError, match="not a kit"):
        kit.pack(data, tmp_path / "busy", _part_bytes(data), masks)
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_a_part_of_another_kit_is_refused(kit, here, tmp_path):
    """Parts of another pack (another part size, or other photos in as many parts) never mix."""
    data, masks = here
    small = kit.pack(data, tmp_path / "a", _part_bytes(data), masks, val_images=2)
    one = kit.pack(data, tmp_path / "b", 10**9, masks, val_images=2)
    other = kit.pack(data, tmp_path / "c", _part_bytes(data), masks, val_images=3)
    assert len(one) == 1 < len(small)

    # as many parts as `small`, split at other files: a part size a little larger or smaller
    def layout(parts):
        return [json.loads((p / "part.json").read_text())["files"] for p in parts]

    for extra in (*range(50, 8000, 50), *range(-50, -8000, -50)):
        resized = kit.pack(data, tmp_path / "d", _part_bytes(data) + extra, masks, val_images=2)
        if len(resized) == len(small) and layout(resized) != layout(small):
            break
    else:
        raise AssertionError("no part size gave as many parts split elsewhere")
    for stranger in (one[0], other[0], *resized):
        box = tmp_path / stranger.parent.parent.name / stranger.name / "kit"
        kit.unpack(small[1], box)
        before = sorted(p.relative_to(box) for p in box.rglob("*"))
        with pytest.raises(kit.KitError, match="another pack.*nothing was copied"):
            kit.unpack(stranger, box)
        assert sorted(p.relative_to(box) for p in box.rglob("*")) == before  # the kit is as it was
        kit.unpack(small[1], box)  # and takes its own parts still


def test_check_sizes_each_call_with_the_tree(kit, here, tmp_path, capsys, monkeypatch):
    data, masks = here
    parts = kit.pack(data, tmp_path / "out", _part_bytes(data), masks)
    monkeypatch.setattr(kit, "_tree_bytes", lambda: 0)
    assert kit.check(tmp_path / "out") == 0
    assert capsys.readouterr().out.count("MiB a call") == len(parts)
    monkeypatch.setattr(kit, "_tree_bytes", lambda: kit.CALL_LIMIT - 100)
    assert kit.check(tmp_path / "out") == 1
    assert "OVER" in capsys.readouterr().out
