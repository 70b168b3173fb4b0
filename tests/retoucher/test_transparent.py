"""A photo with fully transparent pixels: the models read its visible pixels only, in a fill
(the app's and the batch's) and in Find Damage; the hidden colour is never what they see."""

from __future__ import annotations

import numpy as np

from engine.damage import DamageMap
from engine.imageio import load_image, save_image
from retoucher import transparent
from retoucher.batch import BatchOptions, MaskSpec, run_batch
from retoucher.damage import find_damage


class RingMeanFill:
    """A fill that reads the photo around the hole as a network does: the hole becomes the mean
    of the pixels within 2 px outside it."""

    name = "ring-mean"
    device_name = "CPU"
    info = None
    told_hidden: list[np.ndarray | None]

    def __call__(self, image, hole, *, cancel=None, progress=None, texture=None, mirror=None, hidden=None):
        self.__dict__.setdefault("told_hidden", []).append(hidden)  # what the engine is told is no photo
        near = np.zeros_like(hole)
        ys, xs = np.nonzero(hole)
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                near[np.clip(ys + dy, 0, hole.shape[0] - 1), np.clip(xs + dx, 0, hole.shape[1] - 1)] = True
        near &= ~hole
        out = image.copy()
        out[hole] = image[near].mean(0).round()
        return out

    def inpaint_batch(self, images, holes, *, texture=None, mirror=None, hidden=None):
        return [
            self(i, h, hidden=None if hidden is None else hidden[k])
            for k, (i, h) in enumerate(zip(images, holes))
        ]


class EdgeDetector:
    """Flags both pixels of every horizontal step of more than 40 grey levels."""

    name = "edges"
    threshold = 0.5

    def __call__(self, image, threshold=None, *, cancel=None, progress=None):
        grey = image.astype(np.float32).mean(2)
        step = np.abs(np.diff(grey, axis=1)) > 40
        p = np.zeros(grey.shape, np.float32)
        p[:, :-1] += step
        p[:, 1:] += step
        return DamageMap(p, self.threshold, p >= self.threshold)


def _grey_with_hidden_black(h=32, w=48, cut=16):
    image = np.full((h, w, 3), 150, np.uint8)
    image[:, :cut] = 0  # hidden black, as most editors store transparency
    alpha = np.full((h, w), 255, np.uint8)
    alpha[:, :cut] = 0
    hole = np.zeros((h, w), bool)
    hole[8:24, cut + 1 : cut + 9] = True  # beside the transparent part
    return image, alpha, hole


def test_a_fill_beside_a_transparent_part_reads_the_visible_photo_only():
    image, alpha, hole = _grey_with_hidden_black()
    assert (RingMeanFill()(image, hole)[hole] < 140).all()  # darkened by the hidden black
    engine = RingMeanFill()
    out = transparent.fill(engine, image, hole, alpha)
    assert (out[hole] == 150).all()
    np.testing.assert_array_equal(out[~hole], image[~hole])  # hidden pixels keep their values
    np.testing.assert_array_equal(engine.told_hidden[-1], alpha == 0)  # no grain from them
    transparent.fill(engine, image, hole, None)
    assert engine.told_hidden[-1] is None  # an opaque photo: nothing said
    second = np.full_like(image, 90)
    engine = RingMeanFill()
    batch = transparent.fill_batch(engine, [image, second], [hole, hole], [alpha, None])
    np.testing.assert_array_equal(batch[0], out)
    assert (batch[1] == 90).all()
    np.testing.assert_array_equal(engine.told_hidden[0], alpha == 0)
    assert engine.told_hidden[1] is None


def test_find_damage_does_not_take_a_cut_out_outline_for_a_scratch():
    image, alpha, _ = _grey_with_hidden_black()
    image[:, 30] = 250  # a real scratch in the visible part
    assert find_damage(EdgeDetector(), image, dilate=0)[:, 16].all()  # the outline, without alpha
    found = find_damage(EdgeDetector(), image, dilate=0, alpha=alpha)
    assert not found[:, :29].any()
    assert found[:, 29:32].all()  # the scratch still found


def _batch(tmp_path, image, alpha, hole, fill, names=("cut.png",)):
    """``retoucher batch`` of ``names``, each the RGBA photo ``image``+``alpha`` with its mask
    ``hole`` in a mask folder, filled by ``fill``: (the report, the output folder)."""
    folder, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    folder.mkdir()
    masks.mkdir()
    for name in names:
        save_image(folder / name, image, alpha=alpha)
        save_image(masks / name, np.where(hole, 255, 0).astype(np.uint8)[..., None].repeat(3, 2))
    return run_batch(BatchOptions(folder, out, MaskSpec("dir", masks)), inpainter=fill), out


def test_the_batch_fills_an_rgba_photo_from_its_visible_pixels(tmp_path):
    image, alpha, hole = _grey_with_hidden_black()
    report, out = _batch(tmp_path, image, alpha, hole, RingMeanFill())
    assert len(report.done) == 1
    result = load_image(out / "cut.png")
    assert (result.rgb[hole] == 150).all()
    np.testing.assert_array_equal(result.alpha, alpha)


def test_the_app_fills_and_finds_damage_from_the_visible_pixels(qtbot, shown_window):
    from retoucher.document import Document, Rect
    from retoucher.qt.damage_worker import DetectorCache
    from retoucher.qt.fill_worker import InpainterCache

    image, alpha, hole = _grey_with_hidden_black(64, 96, 32)
    fills, detectors = InpainterCache(), DetectorCache()
    fills.set(RingMeanFill())
    detectors.set(EdgeDetector())
    w = shown_window(Document(image, alpha=alpha), fills, detectors=detectors)
    w.damage.action.trigger()
    qtbot.waitUntil(lambda: not w.busy, timeout=10000)
    assert not w.doc.mask.any()  # the cut-out's outline is no scratch
    w._push_edit(w.doc.set_rect(Rect(33, 16, 41, 48)))
    w.fill()
    qtbot.waitUntil(lambda: not w.busy, timeout=10000)
    assert (w.doc.image[16:48, 33:41] == 150).all()
    np.testing.assert_array_equal(w.doc.image[:, :32], image[:, :32])


def test_an_object_brushed_out_beside_the_transparent_part_is_not_read_back():
    image, alpha, _ = _grey_with_hidden_black()
    hole = np.zeros(alpha.shape, bool)
    hole[8:24, 16:24] = True  # from the transparent part's very edge
    image[hole] = (250, 0, 0)  # the object the hole removes
    out = transparent.fill(RingMeanFill(), image, hole, alpha)
    assert (out[hole] == 150).all()


class GroupedRingMeanFill(RingMeanFill):
    """The same fill, in groups of equal-size photos as the batch sends them to a network."""

    max_side = 512
    batch_size = 8

    def __init__(self) -> None:
        self.groups: list[int] = []

    def inpaint_batch(self, images, holes, *, texture=None, mirror=None, hidden=None):
        self.groups.append(len(images))
        return super().inpaint_batch(images, holes, hidden=hidden)


def test_the_batch_fills_rgba_photos_in_groups_from_their_visible_pixels(tmp_path):
    image, alpha, hole = _grey_with_hidden_black()
    fill = GroupedRingMeanFill()
    _, out = _batch(tmp_path, image, alpha, hole, fill, names=("a.png", "b.png"))
    assert fill.groups == [2]
    assert len(fill.told_hidden) == 2 and all(np.array_equal(h, alpha == 0) for h in fill.told_hidden)
    for name in ("a.png", "b.png"):
        assert (load_image(out / name).rgb[hole] == 150).all()


def test_detection_continues_the_hidden_pixels_only_within_the_detectors_reach():
    """A detector that says how far it reads: hidden pixels farther from every visible one are
    left as they are (24 MP cut-outs), those within its reach are continued."""
    seen = []

    class Reaching(EdgeDetector):
        def receptive_radius(self):
            return 4

        def __call__(self, image, threshold=None, *, cancel=None, progress=None):
            seen.append(image.copy())
            return super().__call__(image, threshold)

    image, alpha, _ = _grey_with_hidden_black(32, 64, 40)  # columns 0-39 hidden
    found = find_damage(Reaching(), image, dilate=0, alpha=alpha)
    assert not found.any()
    (read,) = seen
    assert (read[:, 36:40] == 150).all()  # within 4 px of the visible part: continued
    assert (read[:, :30] == 0).all()  # beyond the reach: as it was


def test_a_hole_over_every_visible_pixel_has_nothing_to_fill_from(tmp_path, qtbot, shown_window):
    """An RGBA photo whose visible pixels are all in the hole was filled from the hidden colour
    the editor left (black): the batch wrote it, the app filled it. Nothing to fill from now, as
    for a hole over the whole photo."""
    from retoucher.document import Document, Rect
    from retoucher.qt.fill_worker import InpainterCache

    image, alpha, _ = _grey_with_hidden_black()
    hole = alpha > 0  # the visible part, whole
    assert transparent.why_nothing_to_fill(hole, alpha).startswith("every visible pixel is marked as hole")
    assert transparent.why_nothing_to_fill(hole, None) is None
    assert "the whole image" in transparent.why_nothing_to_fill(np.ones_like(hole), alpha)
    report, out = _batch(tmp_path, image, alpha, hole, RingMeanFill())
    assert (
        not report.done
        and "every visible pixel" in report.failed[0][1]
        and not out.joinpath("cut.png").exists()
    )

    fills = InpainterCache()
    fills.set(RingMeanFill())
    w = shown_window(Document(image, alpha=alpha), fills)
    errors = []
    w.filler.error.connect(lambda title, text: errors.append(text))
    w._push_edit(w.doc.set_rect(Rect(16, 0, 48, 32)))
    assert np.array_equal(w.doc.mask, hole)
    w.fill()
    assert errors and "Every visible pixel" in errors[0] and not w.busy
    np.testing.assert_array_equal(w.doc.image, image)


def test_a_fill_with_no_visible_pixel_within_reach_continues_those_further_off():
    """The hidden pixels were continued only within a crop's reach of the hole: a small visible
    island brushed out far from the rest of the photo was filled from the hidden black."""
    image = np.zeros((40, 400, 3), np.uint8)  # hidden black
    alpha = np.zeros((40, 400), np.uint8)
    image[:, :40], alpha[:, :40] = 150, 255  # the photo
    image[10:20, 360:370], alpha[10:20, 360:370] = 150, 255  # an island, 320 px off
    hole = np.zeros((40, 400), bool)
    hole[10:20, 360:370] = True

    class Near(RingMeanFill):
        max_side = 64  # a crop reaches 64 px around the hole

    out = transparent.fill(Near(), image, hole, alpha)
    assert (out[hole] == 150).all()  # not 0: the hidden black
