"""The Qt-free document model: mask edits, fills, history and the dirty flag."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from retoucher.document import Document, ImageEdit, MaskEdit, Rect


def _photo(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _disk(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r


def test_document_copies_its_input_and_keeps_a_read_only_original():
    rgb = _photo()
    doc = Document(rgb)
    rgb[:] = 0
    assert doc.image.any()
    assert np.array_equal(doc.image, doc.original)
    assert not doc.original.flags.writeable
    assert doc.mask.shape == (48, 64) and doc.mask.dtype == bool and not doc.mask.any()
    assert not doc.dirty


def test_rejects_non_rgb_arrays():
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        Document(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        Document(np.zeros((4, 4, 3), np.float32))


def test_single_dab_is_a_disk_and_undo_redo_are_exact():
    doc = Document(_photo())
    seen: list[Rect] = []
    doc.mask_changed.connect(seen.append)
    doc.begin_stroke(True)
    doc.stroke_to(20.0, 15.0, 5.0)
    edit = doc.end_stroke()
    assert isinstance(edit, MaskEdit)
    expected = _disk(48, 64, 20.0, 15.0, 5.0)
    assert np.array_equal(doc.mask, expected)
    # The edit covers just the dab, and the views were told about it.
    assert edit.rect == Rect.bounding(expected)
    assert seen and seen[0] == edit.rect
    doc.undo(edit)
    assert not doc.mask.any()
    doc.redo(edit)
    assert np.array_equal(doc.mask, expected)


def test_stroke_covers_the_whole_segment_as_a_capsule():
    doc = Document(_photo(64, 200))
    doc.begin_stroke(True)
    doc.stroke_to(10.0, 30.0, 3.0)
    doc.stroke_to(190.0, 30.0, 3.0)  # long: painted in pieces
    doc.end_stroke()
    rows = np.flatnonzero(doc.mask.any(axis=1))
    assert rows.min() == 27 and rows.max() == 32  # centres 27.5 .. 32.5 are within 3 of y=30
    # Every column between the end points is painted on the centre line, none far outside.
    assert doc.mask[29, 10:190].all()
    assert not doc.mask[:, :6].any() and not doc.mask[:, 194:].any()


def test_a_glitched_or_far_off_point_neither_breaks_nor_stalls_a_stroke():
    """A tablet's NaN or inf point is skipped (it was kept and broke every later dab and the next
    Shift+click stroke); a point 1e8 px away paints its in-photo part at once (the whole
    segment was walked: seconds)."""
    import time

    doc = Document(_photo(40, 60))
    doc.begin_stroke(True)
    doc.stroke_to(10.0, 10.0, 3.0)
    for x, y, r in ((float("nan"), 10.0, 3.0), (10.0, float("inf"), 3.0), (12.0, 10.0, float("nan"))):
        assert doc.stroke_to(x, y, r) is None
    assert doc.stroke_to(20.0, 10.0, 3.0) is not None
    start = time.perf_counter()
    far = doc.stroke_to(1e8, 10.0, 3.0)
    assert time.perf_counter() - start < 0.5
    assert far is not None and far.x1 == 60 and doc.mask[9, 20:60].all()
    assert doc.end_stroke() is not None and doc.last_point == (1e8, 10.0)
    from retoucher.brush import paint_capsule  # the clipped segment paints what the whole one would

    for p0, p1 in (((-50.0, -30.0), (90.0, 70.0)), ((30.0, -1e9), (30.0, 1e9)), ((-5.0, 5.0), (-1.0, 5.0))):
        got = np.zeros((40, 60), bool)
        paint_capsule(got, p0, p1, 2.3, True)
        yy, xx = np.mgrid[0:40, 0:60] + 0.5
        (ax, ay), (bx, by) = p0, p1
        t = np.clip(((xx - ax) * (bx - ax) + (yy - ay) * (by - ay)) / ((bx - ax) ** 2 + (by - ay) ** 2), 0, 1)
        reference = (xx - ax - t * (bx - ax)) ** 2 + (yy - ay - t * (by - ay)) ** 2 <= 2.3**2
        assert np.array_equal(got, reference), (p0, p1)


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_a_brush_line_is_as_wide_as_the_brush_wherever_it_lies(size):
    """Every 1/64 of a pixel and float noise at a pixel's edge (a pointer on a 125% display):
    a 1 px brush painted two rows at an edge (its end pixel taken before the tie-break, its
    distances after), and at 3200% zoom the 1/64 tie-break itself made ties."""
    from retoucher.brush import paint_capsule

    ys = [5 + j / 64 for j in range(64)] + [6 - 2**-40, 6 - 1e-12, 5.0, 6.0]
    for y in ys:
        m = np.zeros((12, 40), bool)
        paint_capsule(m, (3.5, y), (36.5, y), size / 2, True)
        widths = m[:, 8:32].sum(axis=0)
        assert set(widths.tolist()) == {size}, (y, sorted(set(widths.tolist())))


def test_a_dab_far_along_a_very_long_strip_is_as_large_as_near_its_start():
    """Pixel centres beyond x = 8 million (a 1 x 70,000,000 scan strip) in float32 were off by
    up to half a pixel: a radius-3 dab there painted a few pixels instead of its disc."""
    from retoucher.brush import paint_capsule

    m = np.zeros((8, 9_000_001), bool)
    near = paint_capsule(m, (100.3, 3.6), (100.3, 3.6), 3, True)
    far = paint_capsule(m, (8_999_900.3, 3.6), (8_999_900.3, 3.6), 3, True)
    assert near is not None and far is not None
    assert m[:, 8_999_880:8_999_920].sum() == m[:, 80:120].sum() > 20


def test_a_fill_of_scattered_pixels_is_applied_undone_and_redone_exactly():
    """The fill is taken on the hole's pixels alone (a fill of specks spans the photo: the
    whole box was compared and copied on the GUI thread, 0.6-1.2 s at 24 MP, now 0.12)."""
    rng = np.random.default_rng(11)
    image = rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)
    hole = rng.random((90, 130)) < 0.05
    result = rng.integers(0, 256, image.shape, dtype=np.uint8)
    same = hole & (rng.random((90, 130)) < 0.3)
    result[same] = image[same]  # hole pixels the fill leaves as they were: no part of the edit
    result[~hole] = 0  # only hole pixels may be read
    expected = image.copy()
    expected[hole] = result[hole]
    doc = Document(image)
    doc.set_mask(hole)
    edit = doc.apply_fill(result, hole)
    assert np.array_equal(doc.image, expected) and not doc.mask.any()
    doc.undo(edit)
    assert np.array_equal(doc.image, image) and np.array_equal(doc.mask, hole)
    doc.redo(edit)
    assert np.array_equal(doc.image, expected) and not doc.mask.any()


def test_a_fill_that_changes_no_pixel_leaves_the_photo_saved():
    """A fill equal to the photo in the hole (a flat background) used the hole up but made the
    photo unsaved; with the hole already cleared meanwhile it was an empty Fill step."""
    doc = Document(np.full((20, 20, 3), 90, np.uint8))
    doc.set_rect(Rect(5, 5, 10, 10))
    hole = doc.mask.copy()
    edit = doc.apply_fill(doc.image.copy(), hole)
    assert isinstance(edit, MaskEdit) and not doc.dirty and not doc.mask.any()
    doc.undo(edit)
    assert np.array_equal(doc.mask, hole) and not doc.dirty
    doc.clear_mask()
    assert doc.apply_fill(doc.image.copy(), hole) is None and not doc.dirty


def test_eraser_stroke_clears_and_undo_restores():
    doc = Document(_photo())
    rect_edit = doc.set_rect(Rect(10, 10, 40, 30))
    assert rect_edit is not None and doc.mask[10:30, 10:40].all() and doc.mask.sum() == 30 * 20
    before = doc.mask.copy()
    doc.begin_stroke(False)
    doc.stroke_to(25.0, 20.0, 4.0)
    erase = doc.end_stroke()
    assert erase is not None and erase.label == "Erase"
    assert not doc.mask[18:22, 23:27].any()
    assert np.array_equal(doc.mask, before & ~_disk(48, 64, 25.0, 20.0, 4.0))
    doc.undo(erase)
    assert np.array_equal(doc.mask, before)


def test_stroke_that_changes_nothing_gives_no_edit():
    doc = Document(_photo())
    doc.begin_stroke(False)  # erasing an empty mask
    doc.stroke_to(5.0, 5.0, 3.0)
    assert doc.end_stroke() is None
    assert doc.set_rect(Rect(100, 100, 120, 120)) is None  # off the photo
    assert doc.clear_mask() is None


def test_mask_edits_store_only_their_box_bit_packed():
    doc = Document(_photo(2000, 3000))
    doc.begin_stroke(True)
    doc.stroke_to(100.0, 100.0, 10.0)
    doc.stroke_to(140.0, 120.0, 10.0)
    edit = doc.end_stroke()
    assert edit is not None
    assert edit.rect.width <= 62 and edit.rect.height <= 42
    assert edit.nbytes <= 2 * (62 * 42 // 8 + 1)


def test_clear_mask_is_undoable():
    doc = Document(_photo())
    doc.set_rect(Rect(0, 0, 10, 10))
    doc.set_rect(Rect(50, 40, 60, 48))
    before = doc.mask.copy()
    edit = doc.clear_mask()
    assert edit is not None and not doc.mask.any()
    doc.undo(edit)
    assert np.array_equal(doc.mask, before)


def test_set_mask_replaces_the_mask_and_checks_the_size():
    doc = Document(_photo())
    m = np.zeros((48, 64), bool)
    m[5:9, 30:33] = True
    edit = doc.set_mask(m)
    assert edit is not None and np.array_equal(doc.mask, m) and edit.rect == Rect(30, 5, 33, 9)
    with pytest.raises(ValueError, match="mask is"):
        doc.set_mask(np.zeros((10, 10), bool))


def test_fill_changes_only_hole_pixels_clears_the_hole_and_is_one_step():
    rgb = _photo()
    doc = Document(rgb)
    doc.set_rect(Rect(10, 10, 20, 20))
    doc.set_rect(Rect(40, 30, 44, 34))
    hole = doc.mask.copy()
    other = hole.copy()
    other[10:20, 10:20] = False  # the small rectangle stays painted if the fill used only the big one
    fill_hole = hole & ~other
    result = 255 - rgb  # every pixel differs: the document must keep the non-hole ones
    changes: list[Rect] = []
    doc.image_changed.connect(changes.append)
    edit = doc.apply_fill(result, fill_hole)
    assert isinstance(edit, ImageEdit)
    assert np.array_equal(doc.image[fill_hole], result[fill_hole])
    assert np.array_equal(doc.image[~fill_hole], rgb[~fill_hole])
    assert np.array_equal(doc.mask, other)  # the filled hole is cleared, the rest kept
    assert changes == [Rect(10, 10, 20, 20)]
    assert doc.dirty
    assert edit.nbytes < 2 * 10 * 10 * 3 + 64
    doc.undo(edit)
    assert np.array_equal(doc.image, rgb) and np.array_equal(doc.mask, hole)
    assert not doc.dirty
    doc.redo(edit)
    assert np.array_equal(doc.image[fill_hole], result[fill_hole]) and doc.dirty


def test_mask_revision_moves_on_every_change_of_the_mask_and_only_then():
    doc = Document(_photo())
    revisions = [doc.mask_revision]

    def moved() -> bool:
        revisions.append(doc.mask_revision)
        return revisions[-1] > revisions[-2]

    assert revisions == [0]
    doc.begin_stroke(True)
    doc.stroke_to(20.0, 15.0, 3.0)
    assert moved()  # each dab, before the stroke ends
    stroke = doc.end_stroke()
    assert not moved()
    rect = doc.set_rect(Rect(40, 30, 50, 40))
    assert moved()
    assert doc.set_rect(Rect(40, 30, 50, 40)) is None and not moved()  # the same again: no change
    doc.undo(rect)
    assert moved()
    doc.redo(rect)
    assert moved()
    doc.undo(stroke)
    assert moved()
    fill = doc.apply_fill(_photo(seed=1), doc.mask.copy())  # a fill clears its hole from the mask
    assert moved()
    doc.undo(fill)
    assert moved()
    doc.redo(fill)
    assert moved()
    assert doc.grow_mask(0) is None and doc.clear_mask() is None and not moved()  # nothing to change
    doc.set_mask(np.ones((48, 64), bool))
    assert moved()


def test_fill_validates_result_shape():
    doc = Document(_photo())
    doc.set_rect(Rect(0, 0, 5, 5))
    with pytest.raises(ValueError, match="fill result"):
        doc.apply_fill(np.zeros((10, 10, 3), np.uint8), doc.mask.copy())


def test_several_fills_then_undo_all_restores_the_original_exactly():
    rgb = _photo()
    doc = Document(rgb)
    edits = []
    for k, box in enumerate([Rect(0, 0, 16, 16), Rect(8, 8, 30, 30), Rect(40, 20, 64, 48)]):
        doc.set_rect(box)
        result = np.full_like(rgb, 40 * (k + 1))
        edits.append(doc.apply_fill(result, doc.mask.copy()))
        assert not doc.mask.any()
    assert (doc.image[8:16, 8:16] == 80).all()  # the second fill painted over the first
    for e in reversed(edits):
        doc.undo(e)
    assert np.array_equal(doc.image, rgb) and np.array_equal(doc.image, doc.original)
    assert not doc.dirty


def test_dirty_follows_the_saved_state_through_undo():
    doc = Document(_photo())
    doc.set_rect(Rect(0, 0, 8, 8))
    assert not doc.dirty  # painting a mask is not an unsaved change of the photo
    e1 = doc.apply_fill(np.zeros_like(doc.image), doc.mask.copy())
    assert doc.dirty
    doc.mark_saved()
    assert not doc.dirty
    doc.undo(e1)
    assert doc.dirty  # the file on disk has the fill; the screen does not
    doc.redo(e1)
    assert not doc.dirty
    doc.mark_unsaved()
    assert doc.dirty


def test_save_and_reopen_round_trip(tmp_path):
    rgb = _photo()
    doc = Document(rgb, path=None)
    doc.set_rect(Rect(4, 4, 12, 12))
    doc.apply_fill(np.zeros_like(rgb), doc.mask.copy())
    out = doc.save(tmp_path / "out.png")
    assert out == tmp_path / "out.png" and doc.path == out and doc.metadata.format == "PNG"
    assert not doc.dirty
    again = Document.open(out)
    assert np.array_equal(again.image, doc.image)
    mask_path = tmp_path / "mask.png"
    doc.set_rect(Rect(1, 2, 5, 7))
    doc.export_mask(mask_path)
    from engine.imageio import load_mask

    assert np.array_equal(load_mask(mask_path), doc.mask)


def test_save_without_a_path_asks_for_one():
    doc = Document(_photo())
    with pytest.raises(ValueError, match="Save As"):
        doc.save()


def test_no_other_change_can_slip_into_a_stroke():
    # A stroke's undo patch is the mask as it was at begin_stroke; an edit in between would be
    # undone with the stroke. So every other change is refused until the stroke ends.
    doc = Document(_photo())
    rect = doc.set_rect(Rect(0, 0, 10, 10))
    doc.begin_stroke(True)
    doc.stroke_to(20.0, 15.0, 3.0)
    for change in (
        lambda: doc.clear_mask(),
        lambda: doc.set_rect(Rect(30, 30, 40, 40)),
        lambda: doc.set_mask(np.zeros((48, 64), bool)),
        lambda: doc.apply_fill(np.zeros_like(doc.image), doc.mask.copy()),
        lambda: doc.undo(rect),
        lambda: doc.redo(rect),
        lambda: doc.begin_stroke(False),
    ):
        with pytest.raises(RuntimeError, match="stroke"):
            change()
    stroke = doc.end_stroke()
    assert doc.mask[:10, :10].all() and doc.mask[15, 20]
    doc.undo(stroke)
    doc.undo(rect)
    assert not doc.mask.any()


def test_an_edit_of_another_photo_is_refused_not_written_elsewhere():
    big = Document(_photo(100, 100))
    edit = big.set_rect(Rect(60, 60, 90, 90))
    small = Document(_photo(48, 64))
    with pytest.raises(ValueError, match="another one"):
        small.undo(edit)
    assert not small.mask.any()


def test_save_in_place_problem_names_what_an_8_bit_rgb_save_would_lose(tmp_path):
    from PIL import Image

    rgb = np.zeros((8, 8, 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "plain.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")  # widens to RGB without loss
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(tmp_path / "deep.png")
    Image.new("CMYK", (8, 8), (0, 50, 100, 0)).save(tmp_path / "print.jpg")
    import cv2

    cv2.imwrite(str(tmp_path / "deep-rgb.png"), np.full((8, 8, 3), 40000, np.uint16))
    Image.fromarray(rgb).save(tmp_path / "pages.tif", save_all=True, append_images=[Image.fromarray(rgb)])
    problem = {p.name: Document.open(p).save_in_place_problem for p in tmp_path.glob("*.[pj][np]g")}
    assert problem["plain.png"] is None and problem["grey.png"] is None
    assert "8 bits" in problem["deep.png"] and "CMYK" in problem["print.jpg"]
    assert "8 bits" in problem["deep-rgb.png"] and "RGB;16" in problem["deep-rgb.png"]
    with pytest.warns(UserWarning):
        assert "2 pages" in Document.open(tmp_path / "pages.tif").save_in_place_problem
    # Saved (as one 8-bit page), the document's file no longer has the problem.
    doc = Document.open(tmp_path / "deep.png")
    doc.save(tmp_path / "deep8.png")
    assert doc.save_in_place_problem is None
    # Formats Pillow reads and Retoucher does not write: a GIF was re-quantised over itself (the
    # pixels outside the hole changed), a PSD failed to save; a camera's MPO is written as JPEG.
    Image.fromarray(rgb).save(tmp_path / "anim.gif")
    assert Document.open(tmp_path / "anim.gif").save_in_place_problem == "Retoucher does not write GIF files"
    Image.fromarray(rgb).save(tmp_path / "cam.jpg")
    cam = Document.open(tmp_path / "cam.jpg")
    cam.metadata = dataclasses.replace(cam.metadata, format="MPO")
    assert cam.save_in_place_problem is None


def test_dpi_and_xmp_travel_from_the_file_to_the_saved_copy(tmp_path):
    from PIL import Image, PngImagePlugin

    from engine.imageio import load_image

    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"></x:xmpmeta>'
    src = tmp_path / "in.png"
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp.decode())
    Image.fromarray(_photo(16, 16)).save(src, dpi=(240, 240), pnginfo=info)
    doc = Document.open(src)
    assert doc.metadata.xmp == xmp and doc.metadata.dpi is not None
    again = load_image(doc.save(tmp_path / "out.tif")).metadata
    assert again.xmp == xmp and np.allclose(again.dpi, (240, 240), atol=0.05)


def test_save_keeps_jpeg_compression_only_when_asked_and_refers_to_the_written_file(tmp_path):
    from PIL import Image

    src = tmp_path / "in.jpg"
    Image.fromarray(_photo()).save(src, quality=40, subsampling=1)
    doc = Document.open(src)
    tables = doc.metadata.jpeg_tables
    assert tables is not None and doc.metadata.format == "JPEG"
    doc.save(tmp_path / "kept.jpg", keep_jpeg_compression=True)
    with Image.open(src) as a, Image.open(tmp_path / "kept.jpg") as b:
        assert a.quantization == b.quantization
    assert doc.metadata.jpeg_tables == tables and doc.path == tmp_path / "kept.jpg"
    doc.save(tmp_path / "copy.png", keep_jpeg_compression=True)
    assert (doc.metadata.format, doc.metadata.jpeg_tables, doc.metadata.mode) == ("PNG", None, "RGB")
    doc.save(tmp_path / "again.jpg", keep_jpeg_compression=True)  # from a PNG now: the quality
    with Image.open(tmp_path / "again.jpg") as c:
        assert c.quantization != a.quantization


def test_a_fill_of_scattered_specks_keeps_only_their_pixels_for_undo():
    """Two specks in opposite corners of a photo (as Find Damage leaves them): the undo step
    held the whole box between them before and after (2 x 3 bytes a pixel, 149 MB on a
    24-megapixel photo); it holds the changed pixels and a one-bit map of the box now, and
    undo and redo restore the photo exactly."""
    h, w = 1500, 2000
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    hole = np.zeros((h, w), bool)
    hole[2:10, 3:11] = True
    hole[h - 10 : h - 2, w - 11 : w - 3] = True
    doc = Document(rgb.copy())
    doc.set_mask(hole)
    result = 255 - rgb
    edit = doc.apply_fill(result, hole)
    assert isinstance(edit, ImageEdit)
    box = (h - 4) * (w - 6)
    # the pixels' map and the cleared hole's two mask maps (1 bit a pixel each), 128 pixels
    # before and after: about 1 MB here, where the boxes took 17.9 MB
    assert edit.nbytes < 3 * (box // 8 + 1) + 2 * 128 * 3 + 1024
    filled = doc.image.copy()
    # the views hear of the two specks, not of the box between them (which they redrew and
    # shrank for zooming out on every undo and redo: 0.2-0.3 s at Fit on 24 MP)
    changes: list[Rect] = []
    doc.image_changed.connect(changes.append)
    doc.undo(edit)
    assert np.array_equal(doc.image, rgb) and np.array_equal(doc.mask, hole)
    assert changes == [Rect(3, 2, 11, 10), Rect(w - 11, h - 10, w - 3, h - 2)]
    doc.redo(edit)
    assert np.array_equal(doc.image, filled) and not doc.mask.any()
    assert np.array_equal(filled[hole], result[hole]) and np.array_equal(filled[~hole], rgb[~hole])
    assert changes[2:] == changes[:2]


def test_a_stroke_across_a_large_photo_keeps_little_in_the_history_and_undoes_exactly():
    """A stroke's edit holds its box before and after: across a large photo that box is most of
    the photo (2 x 1.5 MB here at one bit a pixel; 2 x 12.5 MB a stroke at 100 MP), mostly one
    value, kept deflated."""
    h, w = 3000, 4000
    doc = Document(np.zeros((h, w, 3), np.uint8))
    rng = np.random.default_rng(2)
    specks = rng.random((h, w)) < 0.0005  # found dust already marked
    doc.set_mask(specks)
    doc.begin_stroke(True)
    for t in np.linspace(0, 1, 60):
        doc.stroke_to(t * w, t * h, 12)
    edit = doc.end_stroke()
    assert edit is not None and edit.rect.width * edit.rect.height > 0.9 * h * w
    assert edit.nbytes < 0.1 * 2 * h * w / 8
    after = doc.mask.copy()
    doc.undo(edit)
    assert np.array_equal(doc.mask, specks)
    doc.redo(edit)
    assert np.array_equal(doc.mask, after)


def test_a_save_keeps_only_the_changed_pixels_for_the_next_one(tmp_path):
    """After a save the document remembers what the file now holds where it differs from the
    original (for the next save's changed JPEG blocks): the box around two filled specks in far
    corners was copied whole (71 MB on a 24 MP photo, for as long as it was open)."""
    import gc
    import tracemalloc

    from PIL import Image

    h, w = 1500, 2000
    rgb = np.random.default_rng(4).integers(0, 256, (h, w, 3), dtype=np.uint8)
    doc = Document(rgb.copy())
    hole = np.zeros((h, w), bool)
    hole[2:10, 3:11] = True
    hole[h - 10 : h - 2, w - 11 : w - 3] = True
    doc.set_mask(hole)
    doc.apply_fill(255 - rgb, hole)
    Document(rgb[:8, :8].copy()).save(tmp_path / "warm.png")  # the writer's imports, not counted
    gc.collect()
    tracemalloc.start()
    try:
        doc.save(tmp_path / "filled.png")
        gc.collect()
        kept, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kept < 200_000  # the 128 changed pixels and where they are; the box: 9 MB
    assert np.array_equal(np.asarray(Image.open(tmp_path / "filled.png")), doc.image)


def test_a_file_on_a_share_that_stopped_answering_is_no_change_on_disk(tmp_path, monkeypatch):
    """Path.exists raised ENOTCONN (a dead sshfs or NFS mount) out of Quit's save, and the window
    closed with the work unsaved; the save is left to say what is wrong."""
    import errno

    from PIL import Image

    path = tmp_path / "on_share.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)
    doc = Document.open(path)
    real_stat = os.stat

    def dead(p, *a, **k):
        if os.fspath(p) == str(path):
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected", str(p))
        return real_stat(p, *a, **k)

    monkeypatch.setattr(os, "stat", dead)
    assert doc.changed_on_disk is False


@pytest.mark.parametrize("failing", ["image_changed", "mask_changed", "state_changed"])
def test_a_fill_that_fails_half_way_leaves_no_pixel_no_undo_step_knows_of(failing):
    """Out of memory in a view redrawing after the pixels were written left them filled with no
    undo step and the photo not unsaved: the next Save wrote them, Undo could not take them back."""
    rng = np.random.default_rng(0)
    doc = Document(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))
    hole = np.zeros((60, 80), bool)
    hole[10:30, 20:50] = True
    doc.set_mask(hole)
    image, mask, state = doc.image.copy(), doc.mask.copy(), doc.image_state
    result = doc.image.copy()
    result[hole] = 7
    calls = []

    def out_of_memory(*_args):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("Unable to allocate 183. MiB")

    getattr(doc, failing).connect(out_of_memory)
    with pytest.raises(MemoryError):
        doc.apply_fill(result, hole)
    assert np.array_equal(doc.image, image) and np.array_equal(doc.mask, mask)
    assert doc.image_state == state and not doc.dirty
    edit = doc.apply_fill(result, hole)  # the same fill goes through once memory is there
    assert edit is not None and (doc.image[hole] == 7).all() and not doc.mask.any()
