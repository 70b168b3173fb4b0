"""prepare: bird squares, discards, partial copies, corrupt/grayscale files, the stratified split,
the manifest, idempotency, --images-dir, and the real CUB copy's counts."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainer.__main__ import main
from trainer.cub import CUBError, bird_square, centre_square, read_cub
from trainer.manifest import read_manifest
from trainer.prepare import PrepareConfig, PrepareError, prepare
from trainer.splits import split_counts, stratified_split


# ---------------------------------------------------------------- the square crop
def test_bird_square_is_centred_on_the_box():
    # box 40x20 at (30, 40) in 200x100: square side 40, centred vertically on the box
    assert bird_square((30, 40, 40, 20), 200, 100) == (30, 30, 40)


def test_bird_square_shifts_inside_the_photo():
    # a 60x60 square around a box at the left edge cannot start at -10: it starts at 0
    assert bird_square((0, 20, 40, 60), 200, 100) == (0, 20, 60)
    # at the bottom-right corner
    assert bird_square((170, 80, 30, 20), 200, 100) == (170, 70, 30)


def test_bird_square_discards_boxes_longer_than_the_short_side():
    assert bird_square((10, 5, 101, 50), 200, 100) is None
    assert bird_square((10, 0, 100, 50), 200, 100) == (10, 0, 100)  # exactly fits


def test_bird_square_always_contains_the_box_and_stays_inside():
    rng = np.random.default_rng(3)
    for _ in range(500):
        w, h = int(rng.integers(20, 300)), int(rng.integers(20, 300))
        bw, bh = rng.uniform(1, w), rng.uniform(1, h)
        x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        sq = bird_square((x, y, bw, bh), w, h)
        if sq is None:
            assert max(np.ceil(x + bw) - np.floor(x), np.ceil(y + bh) - np.floor(y)) > min(w, h)
            continue
        left, top, side = sq
        assert left >= 0 and left + side <= w and top >= 0 and top + side <= h
        assert left <= x and top <= y and left + side >= x + bw and top + side >= y + bh
        assert side == max(int(np.ceil(x + bw)) - int(np.floor(x)), int(np.ceil(y + bh)) - int(np.floor(y)))


def test_centre_square():
    assert centre_square(120, 90) == (15, 0, 90)
    assert centre_square(50, 80) == (0, 15, 50)


# ---------------------------------------------------------------- splits
@pytest.mark.parametrize("n", range(0, 40))
def test_split_counts_are_close_to_6_2_2(n):
    counts = split_counts(n, (6, 2, 2))
    assert sum(counts) == n and min(counts) >= 0
    if n:
        assert counts[0] >= 1
    for c, share in zip(counts, (0.6, 0.2, 0.2)):
        assert abs(c - n * share) <= 1.0


def test_stratified_split_is_reproducible_and_per_group():
    groups = {"a": list(range(0, 50)), "b": list(range(100, 120))}
    s1 = stratified_split(groups, seed=0)
    assert s1 == stratified_split({"b": groups["b"][::-1], "a": groups["a"]}, seed=0)
    assert s1 != stratified_split(groups, seed=1)
    for ids in groups.values():
        got = Counter(s1[i] for i in ids)
        assert [got["train"], got["val"], got["test"]] == split_counts(len(ids), (6, 2, 2))
    # a group's split does not depend on the other groups
    assert {i: s1[i] for i in groups["b"]} == stratified_split({"b": groups["b"]}, seed=0)


# ---------------------------------------------------------------- CUB metadata
def test_read_cub_names_a_missing_metadata_file(cub):
    (cub.root / "bounding_boxes.txt").unlink()
    with pytest.raises(CUBError, match="bounding_boxes.txt"):
        read_cub(cub.root)


def test_read_cub_reads_all_listed_records(cub):
    records = read_cub(cub.root)
    assert len(records) == cub.listed
    assert records[0].species == cub.species[1] and records[0].bbox == cub.boxes[1]


def test_read_cub_refuses_an_id_listed_twice_and_two_ids_of_one_photo(cub):
    """A second line for an id replaced the first without a word (a photo vanished); two ids of
    one photo wrote one square for two manifest rows, possibly in two splits."""
    images = cub.root / "images.txt"
    lines = images.read_text().splitlines()
    images.write_text("\n".join([*lines, lines[0]]) + "\n")
    with pytest.raises(CUBError, match="id 1 is listed a second time"):
        read_cub(cub.root)
    last_id = len(lines) + 1
    images.write_text("\n".join([*lines, f"{last_id} {lines[0].split()[1]}"]) + "\n")
    for name in ("bounding_boxes.txt", "image_class_labels.txt", "train_test_split.txt"):
        table = cub.root / name
        first = table.read_text().splitlines()[0].split(maxsplit=1)[1]
        table.write_text(table.read_text() + f"{last_id} {first}\n")
    with pytest.raises(CUBError, match=f"images 1 and {last_id} both name"):
        read_cub(cub.root)


@pytest.mark.parametrize("form", ["absolute", "climbing", "windows drive"])
def test_prepare_never_writes_outside_its_output_through_a_listed_path(cub, tmp_path, form):
    """An images.txt path that was absolute or climbed out with '..' made the square's output
    path the photo's own: prepare wrote a 32x32 square over the original (exit 0). Refused
    before anything is written; so are two photos whose squares would be one file
    (bird.jpg and bird.png)."""
    mine = tmp_path / "mine" / "holiday.jpg"
    mine.parent.mkdir()
    Image.fromarray(np.full((60, 80, 3), 120, np.uint8)).save(mine)
    before = mine.read_bytes()
    rel = {"absolute": str(mine), "climbing": "../../mine/holiday.jpg", "windows drive": "C:/x/holiday.jpg"}[
        form
    ]
    images = cub.root / "images.txt"
    lines = images.read_text().splitlines()
    images.write_text("\n".join([f"1 {rel}", *lines[1:]]) + "\n")
    with pytest.raises(CUBError, match="no path inside the images folder"):
        _prepare(cub.root, tmp_path / "out")
    assert mine.read_bytes() == before and not (tmp_path / "out" / "images").exists()
    first = lines[0].split()[1]
    images.write_text("\n".join([lines[0], f"1000 {first[:-4]}.png", *lines[1:]]) + "\n")
    for name in ("bounding_boxes.txt", "image_class_labels.txt", "train_test_split.txt"):
        table = cub.root / name
        table.write_text(
            table.read_text() + f"1000 {table.read_text().splitlines()[0].split(maxsplit=1)[1]}\n"
        )
    with pytest.raises(CUBError, match="differ only in their suffix or case"):
        read_cub(cub.root)


@pytest.mark.parametrize(
    "bad, says",
    [
        ({"size": 4}, "--size must be 8 to 8192"),
        ({"size": 40000}, "--size must be 8 to 8192"),  # 4.8 GB a square, each photo "corrupt"
        ({"quality": -5}, "--quality must be 1 to 100"),  # JPEGs of quality 1 without a word
        ({"quality": 101}, "--quality must be 1 to 100"),
        ({"seed": -1}, "--seed must be 0 or more"),  # failed after every file was written
    ],
)
def test_prepare_options_out_of_range_are_refused_before_any_file(cub, tmp_path, bad, says):
    with pytest.raises(PrepareError, match=says):
        _prepare(cub.root, tmp_path / "out", **bad)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- prepare on the fixture
def _prepare(cub_root: Path, out: Path, **kw):
    cfg = dict(out=out, cub=cub_root, size=32, workers=1, progress=False)
    cfg.update(kw)
    return prepare(PrepareConfig(**cfg))


def test_prepare_counts_and_reports(cub, tmp_path):
    report = _prepare(cub.root, tmp_path / "data")
    assert report.listed == cub.listed == 30
    assert report.present == cub.present == 27
    assert report.missing == cub.missing == 3
    assert sorted(s for s, _ in report.corrupt) == sorted(cub.corrupt)
    reasons = dict(report.corrupt)
    assert all(reason for reason in reasons.values())
    assert report.discarded == len(cub.discarded) == 3
    assert report.kept == cub.present - len(cub.corrupt) - len(cub.discarded) == 22
    assert report.converted_to_rgb == {"L": 1}
    summary = report.summary(tmp_path / "data")
    # missing files are reported once, in one line, with the count
    assert summary.count("missing") == 1 and "3 missing" in summary
    assert "kept 22, discarded 3" in summary and "corrupt 2" in summary
    for rel in cub.corrupt:
        assert rel in summary


def test_prepare_writes_squares_and_a_manifest(cub, tmp_path):
    out = tmp_path / "data"
    _prepare(cub.root, out)
    rows = read_manifest(out)
    assert len(rows) == 22
    ids = {r.image_id for r in rows}
    assert not ids & set(cub.discarded)
    for r in rows:
        w, h = cub.sizes[r.image_id]
        assert (r.source_width, r.source_height) == (w, h)
        assert r.bbox == cub.boxes[r.image_id]
        assert r.crop == bird_square(r.bbox, w, h)
        with Image.open(out / r.file) as img:
            assert img.size == (32, 32) and img.mode == "RGB" and img.format == "JPEG"
    # the square box is exactly the crop: the red bird fills the whole output
    red = next(r for r in rows if r.image_id == cub.square_box)
    arr = np.asarray(Image.open(out / red.file)).astype(int)
    assert arr[..., 0].min() > 200 and arr[..., 2].max() < 60
    # grayscale became RGB with equal channels
    gray = next(r for r in rows if r.image_id == cub.grayscale[0])
    assert gray.source_mode == "L"
    g = np.asarray(Image.open(out / gray.file)).astype(int)
    assert g.shape == (32, 32, 3) and np.abs(g[..., 0] - g[..., 1]).max() <= 3


def test_prepare_split_is_stratified_and_seeded(cub, tmp_path):
    _prepare(cub.root, tmp_path / "a", seed=0)
    _prepare(cub.root, tmp_path / "b", seed=0)
    _prepare(cub.root, tmp_path / "c", seed=5)
    a, b, c = (read_manifest(tmp_path / x) for x in "abc")
    assert [(r.image_id, r.split) for r in a] == [(r.image_id, r.split) for r in b]
    assert [r.split for r in a] != [r.split for r in c]
    per_species = Counter(r.species for r in a)
    for species, n in per_species.items():
        got = Counter(r.split for r in a if r.species == species)
        assert [got["train"], got["val"], got["test"]] == split_counts(n, (6, 2, 2))
    assert {r.split for r in a} == {"train", "val", "test"}


def test_prepare_is_idempotent(cub, tmp_path):
    out = tmp_path / "data"
    first = _prepare(cub.root, out)
    manifest = (out / "manifest.csv").read_bytes()
    files = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out / "images").rglob("*.jpg")}
    second = _prepare(cub.root, out)
    assert first.written == 22 and second.written == 0 and second.reused == 22
    assert (out / "manifest.csv").read_bytes() == manifest
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out / "images").rglob("*.jpg")}
    assert after == files
    assert json.loads((out / "prepare.json").read_text())["report"]["kept"] == 22


def test_prepare_rewrites_the_square_of_a_photo_replaced_since_whatever_its_dates(cub, tmp_path):
    """Same settings, one photo replaced by another carrying an older date (cp -p, rsync -a): its
    square is written again (it was kept, judged by its own header, beside the manifest's new
    size and crop); photos given new dates with the same bytes (a fresh copy) keep theirs."""
    out = tmp_path / "data"
    _prepare(cub.root, out)
    row = next(r for r in read_manifest(out) if r.source_width == 120)
    source = cub.root / "images" / row.source
    old_date = source.stat().st_mtime_ns - 10**12
    Image.new("RGB", (120, 100), (255, 0, 0)).save(source, quality=95)
    os.utime(source, ns=(old_date, old_date))
    report = _prepare(cub.root, out)
    assert report.written == 1 and report.reused == 21
    square = np.asarray(Image.open(out / row.file))
    assert square[..., 0].min() > 240 and square[..., 1:].max() < 15
    assert next(r for r in read_manifest(out) if r.image_id == row.image_id).source_height == 100
    for photo in (cub.root / "images").rglob("*.jpg"):
        os.utime(photo)  # now: newer than every square
    again = _prepare(cub.root, out)
    assert again.written == 0 and again.reused == 22


def test_prepare_rewrites_the_square_of_a_photo_whose_bounding_box_changed(cub, tmp_path):
    """The same photo with its box edited in bounding_boxes.txt (a corrected list, one's own
    photos listed CUB-style) kept its old square, while the manifest gave the new crop."""
    out = tmp_path / "data"
    _prepare(cub.root, out)
    row = next(r for r in read_manifest(out) if r.image_id == cub.square_box)
    before = (out / row.file).read_bytes()
    boxes = cub.root / "bounding_boxes.txt"
    lines = boxes.read_text().splitlines()
    i, (x, y, w, h) = next(
        (i, line.split()[1:]) for i, line in enumerate(lines) if line.split()[0] == str(row.image_id)
    )
    lines[i] = f"{row.image_id} {float(x) + 4} {float(y) + 3} {w} {h}"
    boxes.write_text("\n".join(lines) + "\n")
    report = _prepare(cub.root, out)
    assert report.written == 1 and report.reused == 21
    after = next(r for r in read_manifest(out) if r.image_id == row.image_id)
    assert after.crop != row.crop and (out / row.file).read_bytes() != before


def test_prepare_scales_a_16_bit_grey_photo_as_the_app_reads_it(tmp_path):
    """A 16-bit grey scan keeps its tones (Pillow's convert("RGB") clipped it to white)."""
    photos = tmp_path / "photos" / "scans"
    photos.mkdir(parents=True)
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))
    Image.fromarray(ramp).save(photos / "scan.png")
    prepare(
        PrepareConfig(out=tmp_path / "data", images_dir=photos.parent, size=32, workers=1, progress=False)
    )
    (row,) = read_manifest(tmp_path / "data")
    square = np.asarray(Image.open(tmp_path / "data" / row.file).convert("L")).astype(int)
    assert square[:, :4].mean() < 30 and square[:, -4:].mean() > 225 and 100 < square.mean() < 156


def test_prepare_png_rewrites_and_removes_stale_files(cub, tmp_path):
    out = tmp_path / "data"
    _prepare(cub.root, out)
    report = _prepare(cub.root, out, format="png")
    assert report.written == 22 and report.removed_stale == 22
    assert not list((out / "images").rglob("*.jpg"))
    rows = read_manifest(out)
    assert all(r.file.endswith(".png") for r in rows)
    with Image.open(out / rows[0].file) as img:
        assert img.format == "PNG"


def _sizes_and_tables(out: Path) -> set:
    got = set()
    for r in read_manifest(out):
        with Image.open(out / r.file) as img:
            got.add((img.size, str(img.quantization)))
    return got


def test_prepare_killed_with_new_settings_never_reuses_its_files(cub, tmp_path, monkeypatch):
    import trainer.prepare as prep

    out = tmp_path / "data"
    _prepare(cub.root, out)  # complete at 32 px, quality 95
    expected = _sizes_and_tables(out)
    assert len(expected) == 1
    real, calls = prep._process, []

    def killed_after_five(job):
        if len(calls) == 5:
            raise KeyboardInterrupt  # stands for SIGKILL: nothing after this line runs
        calls.append(job)
        return real(job)

    monkeypatch.setattr(prep, "_process", killed_after_five)
    with pytest.raises(KeyboardInterrupt):
        _prepare(cub.root, out, size=48, quality=80)
    monkeypatch.setattr(prep, "_process", real)
    assert "settings" not in json.loads((out / "prepare.json").read_text())  # in progress
    # training and evaluation refuse the half-prepared folder (they read the mix without a word)
    from trainer.data import PreparedImages
    from trainer.manifest import ManifestError

    with pytest.raises(ManifestError, match="half prepared.*run that prepare again"):
        PreparedImages(out, "train")
    from trainer.photo_eval import source_photos  # the photos task, the damage trainer, native crops

    with pytest.raises(ManifestError, match="half prepared"):  # not "does not name the source photos"
        source_photos(out, "test", None)
    report = _prepare(cub.root, out)  # the original settings again
    assert report.written == 22 and report.reused == 0
    assert _sizes_and_tables(out) == expected
    assert len(PreparedImages(out, "train")) > 0  # whole again


def test_a_prepare_stopped_with_unchanged_settings_is_refused_too(cub, tmp_path, monkeypatch):
    """Only a run with new settings marked the folder: one with the same settings, stopped after
    rewriting the square of a replaced photo, left the old manifest and a prepare.json that
    vouched for it, and training read the mix."""
    import trainer.prepare as prep
    from trainer.data import PreparedImages
    from trainer.manifest import ManifestError

    out = tmp_path / "data"
    _prepare(cub.root, out)
    monkeypatch.setattr(prep, "_process", lambda job: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        _prepare(cub.root, out)  # the same settings
    monkeypatch.undo()
    with pytest.raises(ManifestError, match="half prepared"):
        PreparedImages(out, "train")
    report = _prepare(cub.root, out)  # run again: whole, and its squares kept
    assert report.reused == 22 and len(PreparedImages(out, "train")) > 0


def test_prepare_rewrites_reused_files_whose_header_disagrees(cub, tmp_path):
    out = tmp_path / "data"
    _prepare(cub.root, out)
    rows = read_manifest(out)
    expected = _sizes_and_tables(out)
    # e.g. left by an older version killed mid-way: prepare.json still vouches for these
    Image.new("RGB", (48, 48)).save(out / rows[0].file, format="JPEG", quality=95)
    Image.new("RGB", (32, 32)).save(out / rows[1].file, format="JPEG", quality=60)
    Image.new("RGB", (32, 32)).save(out / rows[2].file, format="PNG")  # named .jpg
    report = _prepare(cub.root, out)
    assert report.written == 3 and report.reused == 19
    assert _sizes_and_tables(out) == expected
    for r in rows[:3]:
        with Image.open(out / r.file) as img:
            assert img.format == "JPEG" and np.asarray(img).max() > 0  # the crop, not black


def test_prepare_with_worker_processes_matches_one_process(cub, tmp_path):
    _prepare(cub.root, tmp_path / "one", workers=1)
    _prepare(cub.root, tmp_path / "two", workers=2)
    one, two = read_manifest(tmp_path / "one"), read_manifest(tmp_path / "two")
    assert one == two
    for r in one:
        assert (tmp_path / "one" / r.file).read_bytes() == (tmp_path / "two" / r.file).read_bytes()


def test_prepare_never_writes_into_its_source(cub):
    before = sorted(p for p in cub.root.rglob("*"))
    with pytest.raises(PrepareError, match="outside the source"):
        _prepare(cub.root, cub.root / "prepared")
    with pytest.raises(PrepareError, match="outside the source"):
        _prepare(cub.root, cub.root)
    assert sorted(p for p in cub.root.rglob("*")) == before


def test_prepare_out_that_is_a_file_is_refused(cub, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(PrepareError, match="is a file, not a folder"):
        _prepare(cub.root, notes)
    assert notes.read_text() == "mine"


def test_a_source_without_photos_is_refused_before_any_file(cub, tmp_path):
    """A folder of camera RAW files (or the wrong folder) prepared an empty data folder, exit 0;
    so did a CUB copy whose images/ is elsewhere."""
    raw = tmp_path / "raw"
    (raw / "2024").mkdir(parents=True)
    (raw / "2024" / "IMG_0001.CR2").write_bytes(b"II*\x00raw")
    (raw / ".thumbs").mkdir()
    Image.new("RGB", (40, 40)).save(raw / ".thumbs" / "a.jpg")  # hidden: not a photo to train on
    with pytest.raises(PrepareError, match=r"no photos found in .*raw .*\.jpg.*RAW files need converting"):
        prepare(PrepareConfig(out=tmp_path / "data", images_dir=raw, size=32, workers=1, progress=False))
    assert main(["prepare", "--images-dir", str(raw), "--out", str(tmp_path / "data")]) == 2
    (cub.root / "images").rename(tmp_path / "elsewhere")
    with pytest.raises(PrepareError, match=rf"none of the {cub.listed} photos images.txt lists is under"):
        _prepare(cub.root, tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_prepare_images_dir_uses_centre_squares_and_folders_as_classes(tmp_path, make_photos):
    photos = make_photos(tmp_path / "photos", per_class=5, classes=2, size=(80, 60))
    (photos / "class_0" / "broken.png").write_bytes(b"nope")
    report = prepare(
        PrepareConfig(out=tmp_path / "data", images_dir=photos, size=32, workers=1, progress=False)
    )
    assert report.present == 11 and report.kept == 10 and len(report.corrupt) == 1
    Image.new("1", (80, 60), 1).save(photos / "class_1" / "bilevel.png")  # "converted to RGB: 1 1"
    summary = prepare(
        PrepareConfig(out=tmp_path / "data", images_dir=photos, size=32, workers=1, progress=False)
    ).summary(tmp_path / "data")
    assert "converted to RGB: 1 from 1" in summary
    rows = read_manifest(tmp_path / "data")
    assert {r.species for r in rows} == {"class_0", "class_1"}
    assert all(r.crop == (10, 0, 60) and r.bbox is None for r in rows)


def test_photos_added_to_or_removed_from_a_folder_never_move_the_others(tmp_path, make_photos):
    """Adding IMG_0001.jpg to a class of 20 and preparing again moved 11 of the 20 between train,
    val and test (positions in the folder listing shifted, and their shuffle with them): a model
    trained before was then tested on photos it trained on. Each photo keeps its part now."""
    photos = make_photos(tmp_path / "photos", per_class=20, classes=2, size=(40, 40))
    out = tmp_path / "data"
    config = PrepareConfig(out=out, images_dir=photos, size=16, workers=1, progress=False)

    def parts():
        return {r.source: r.split for r in read_manifest(out)}

    prepare(config)
    before = parts()
    assert sorted(before.values()).count("test") == 8  # 6:2:2 in each class: 12, 4, 4
    first = sorted((photos / "class_0").iterdir())[0]
    Image.new("RGB", (40, 40), (10, 20, 30)).save(first.with_name("0000_" + first.name))  # sorts first
    prepare(config)
    after = parts()
    assert len(after) == 41 and all(after[src] == part for src, part in before.items())
    (photos / "class_1" / sorted(p.name for p in (photos / "class_1").iterdir())[3]).unlink()
    prepare(config)
    assert all(part == before[src] for src, part in parts().items() if src in before)
    for k in range(4):  # a class that grows keeps near its shares with what it has
        Image.new("RGB", (40, 40), (k, 2 * k, 3 * k)).save(photos / "class_0" / f"new_{k}.png")
    prepare(config)
    grown = [part for src, part in parts().items() if src.startswith("class_0/")]
    assert (grown.count("train"), grown.count("val"), grown.count("test")) == (15, 5, 5)
    other = PrepareConfig(out=out, images_dir=photos, size=16, seed=1, workers=1, progress=False)
    prepare(other)  # another seed: another split (asked for)
    reseeded = parts()
    assert any(reseeded[src] != part for src, part in before.items() if src in reseeded)


def test_a_class_that_grows_from_two_photos_never_sends_its_test_photo_to_train(tmp_path, make_photos):
    """Counts per part are not monotone (2 photos: 1, 0, 1; 3: 2, 1, 0): re-splitting the three
    sent the test photo to train."""
    photos = make_photos(tmp_path / "photos", per_class=2, classes=1, size=(40, 40))
    out = tmp_path / "data"
    config = PrepareConfig(out=out, images_dir=photos, size=16, workers=1, progress=False)
    prepare(config)
    before = {r.source: r.split for r in read_manifest(out)}
    assert sorted(before.values()) == ["test", "train"]
    Image.new("RGB", (40, 40), (1, 2, 3)).save(photos / "class_0" / "third.png")
    prepare(config)
    after = {r.source: r.split for r in read_manifest(out)}
    assert all(after[src] == part for src, part in before.items()) and after["class_0/third.png"] == "train"


def test_ctrl_c_during_prepare_is_one_line_and_its_workers_leave_it_to_the_main_process(
    cub, tmp_path, capsys, monkeypatch
):
    """Ctrl-C ended in a traceback of 31 lines through multiprocessing (and one per worker)."""
    import multiprocessing
    import signal

    import trainer.prepare as prep

    def interrupted(job):
        raise KeyboardInterrupt

    monkeypatch.setattr(prep, "_process", interrupted)
    rc = main(
        ["prepare", "--cub", str(cub.root), "--out", str(tmp_path / "d"), "--workers", "1", "--no-progress"]
    )
    err = capsys.readouterr().err
    assert rc == 130 and err.count("\n") == 1 and "prepare: interrupted; run it again" in err
    ctx = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    with ctx.Pool(1, initializer=prep._ignore_interrupts) as pool:
        assert pool.apply(signal.getsignal, (signal.SIGINT,)) == signal.SIG_IGN


def test_prepare_cli_prints_the_report(cub, tmp_path, capsys):
    rc = main(
        [
            "prepare",
            "--cub",
            str(cub.root),
            "--out",
            str(tmp_path / "d"),
            "--size",
            "32",
            "--workers",
            "1",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "listed 30 photos: 27 present, 3 missing" in out and "kept 22" in out
    rc = main(["prepare", "--cub", str(tmp_path / "nowhere"), "--out", str(tmp_path / "e")])
    assert rc == 2 and "not found" in capsys.readouterr().err
    # an output that cannot be made (under a file) is one line, not a traceback
    (tmp_path / "a_file").write_text("x")
    rc = main(["prepare", "--cub", str(cub.root), "--out", str(tmp_path / "a_file" / "d"), "--workers", "1"])
    assert rc == 2 and capsys.readouterr().err.strip().endswith("a_file/d: Not a directory")


# ---------------------------------------------------------------- the shared real data
@pytest.mark.realdata
@pytest.mark.slow
def test_prepare_real_partial_cub(tmp_path):
    data = os.environ.get("RETOUCHER_DATA")
    if not data:
        pytest.skip("RETOUCHER_DATA is not set")
    root = Path(data) / "CUB_200_2011"
    report = prepare(PrepareConfig(out=tmp_path / "cub", cub=root, progress=False))
    # the shared copy: full metadata for 200 species, photos of 155 (001-030 whole originals,
    # 125 more already cropped to the bird's square, their boxes in the crop's coordinates)
    assert report.listed == 11788
    assert report.present == 7801 and report.missing == 3987
    assert report.corrupt == []
    assert report.kept == 7410 and report.discarded == 391
    assert report.species == 155
    assert report.splits == {"train": 4442, "val": 1483, "test": 1485}
    assert report.bytes < 40_000 * report.kept  # JPEG q95 of 256x256: about 25 kB each


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_full_disk_stops_prepare_with_one_line_not_a_report_of_corrupt_photos(
    cub, tmp_path, capsys, monkeypatch, workers
):
    """A square that could not be written (a full disk) was counted as a corrupt source: every
    photo came out "corrupt" and prepare ended with its report and exit 0."""
    import contextlib
    import errno

    import trainer.prepare as prep

    real = prep.atomic_path

    @contextlib.contextmanager
    def disk_full(path, *a, **k):  # once the run's settings are written: the squares
        if Path(path).suffix in (".jpg", ".png"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        with real(path, *a, **k) as tmp:
            yield tmp

    monkeypatch.setattr(prep, "atomic_path", disk_full)  # forked workers see it too
    out = tmp_path / "d"
    args = ["prepare", "--cub", str(cub.root), "--out", str(out), "--size", "32", "--no-progress"]
    assert main([*args, "--workers", workers]) == 2
    captured = capsys.readouterr()
    assert "corrupt" not in captured.out
    said = captured.err.strip().splitlines()
    assert len(said) == 1 and str(out) in said[0] and os.strerror(errno.ENOSPC) in said[0], said
