"""How well a damage detector finds synthetic damage, against the classical detector.

The held-out set: the source photos of the inpainting *val* split (never trained on), whole and
at native resolution, each aged and damaged by :func:`trainer.damage_synth.synthesize` from the
seed ``[seed, image id]`` - the same photos and damage for every method. Figures, pooled over all
pixels of the set:

* precision, recall and F1 at 0 px tolerance (exact pixels) and at 2 px (a found pixel counts
  when a damaged pixel lies within 2 px, a damaged pixel is found when a found pixel lies within
  2 px, the usual boundary tolerance of thin-structure detection);
* ``clean flagged``: the share of pixels flagged on the same aged photos without the damage;
* ``untouched flagged``: the share flagged on the photos as they are (not aged, not damaged):
  sharp digital photos, whose every flag is a false alarm on a twig, a post, a wire or an edge
  (not drawn by the generator: the photos' own content).

:func:`calibrate` picks the threshold a weight file ships with, on *train* photos with fresh
damage: the best F1 at 2 px among the thresholds that flag at most :data:`CLEAN_BUDGET` of
the clean pixels.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .damage_data import damage_photos
from .damage_synth import KINDS, DamageSample, classical_detector, synthesize
from .data import load_rgb

__all__ = [
    "CLEAN_BUDGET",
    "Counts",
    "DetectionScores",
    "calibrate",
    "damage_samples",
    "evaluate_detectors",
    "format_table",
]

CLEAN_BUDGET = 0.005
TOLERANCE = 2
THRESHOLDS = np.round(np.arange(0.05, 0.991, 0.01), 3)
GROW = 2
"""The evaluation also scores the masks grown by this many pixels, as ``retoucher detect``, batch
and the app grow them before filling (``retoucher.damage.DEFAULT_DILATE``; a test keeps the two
equal: the trainer does not import the app)."""


def _near(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return mask
    # the disc of pixel centres within ``radius``, as the app's grow uses
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    k = (yy * yy + xx * xx <= radius * radius).astype(np.uint8)
    return cv2.dilate(mask.astype(np.uint8), k).astype(bool)


@dataclass
class Counts:
    """Pixel counts of one method, summed over a set."""

    found: int = 0  # flagged pixels
    damaged: int = 0  # true damage pixels
    found_true: dict[int, int] = field(default_factory=dict)  # tolerance -> found pixels near damage
    damaged_found: dict[int, int] = field(default_factory=dict)  # tolerance -> damage pixels near a find
    clean_flagged: int = 0
    clean_pixels: int = 0
    untouched_flagged: int = 0
    untouched_pixels: int = 0
    kind_damaged: dict[int, int] = field(default_factory=dict)  # kind -> damage pixels
    kind_found: dict[int, int] = field(default_factory=dict)  # kind -> of them found (2 px)

    def add(
        self,
        pred: np.ndarray,
        label: np.ndarray,
        clean_pred: np.ndarray | None,
        kinds: np.ndarray | None = None,
    ) -> None:
        self.found += int(pred.sum())
        self.damaged += int(label.sum())
        near_pred = {}
        for tol in (0, TOLERANCE):
            near_pred[tol] = _near(pred, tol)
            self.found_true[tol] = self.found_true.get(tol, 0) + int((pred & _near(label, tol)).sum())
            self.damaged_found[tol] = self.damaged_found.get(tol, 0) + int((label & near_pred[tol]).sum())
        if kinds is not None:
            for k in np.unique(kinds[label]):
                of_kind = kinds == k
                self.kind_damaged[int(k)] = self.kind_damaged.get(int(k), 0) + int(of_kind.sum())
                found = int((of_kind & near_pred[TOLERANCE]).sum())
                self.kind_found[int(k)] = self.kind_found.get(int(k), 0) + found
        if clean_pred is not None:
            self.clean_flagged += int(clean_pred.sum())
            self.clean_pixels += clean_pred.size

    def add_untouched(self, pred: np.ndarray) -> None:
        """The flags on a photo as it is (no ageing, no damage): all false alarms."""
        self.untouched_flagged += int(pred.sum())
        self.untouched_pixels += pred.size

    def kind_recall(self) -> dict[int, float]:
        """Recall at 2 px per kind of damage (1 + index in :data:`~trainer.damage_synth.KINDS`)."""
        return {k: self.kind_found[k] / n for k, n in sorted(self.kind_damaged.items()) if n}

    def scores(self, tol: int) -> tuple[float, float, float]:
        p = self.found_true.get(tol, 0) / self.found if self.found else 0.0
        r = self.damaged_found.get(tol, 0) / self.damaged if self.damaged else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f

    @property
    def clean_share(self) -> float:
        return self.clean_flagged / self.clean_pixels if self.clean_pixels else 0.0

    @property
    def untouched_share(self) -> float | None:
        return self.untouched_flagged / self.untouched_pixels if self.untouched_pixels else None


@dataclass(frozen=True)
class DetectionScores:
    method: str
    photos: int
    threshold: float | None
    precision0: float
    recall0: float
    f1_0: float
    precision2: float
    recall2: float
    f1_2: float
    clean_flagged: float
    recall_by_kind: dict[str, float] = field(default_factory=dict)
    untouched_flagged: float | None = None  # None: a report from before it was measured

    @classmethod
    def from_counts(cls, method: str, photos: int, threshold: float | None, c: Counts) -> DetectionScores:
        by_kind = {KINDS[k - 1]: r for k, r in c.kind_recall().items()}
        return cls(
            method,
            photos,
            threshold,
            *c.scores(0),
            *c.scores(TOLERANCE),
            c.clean_share,
            by_kind,
            c.untouched_share,
        )


def damage_samples(
    data: str | Path, split: str, limit: int | None, seed: int
) -> Iterator[tuple[np.ndarray, DamageSample]]:
    """The photos of ``split`` (whole, native resolution) as they are and damaged, seeded per
    image id."""
    for image_id, path in damage_photos(data, split, limit):
        photo = load_rgb(path)
        yield photo, synthesize(np.random.default_rng([seed, image_id]), photo)


ProbabilityFn = Callable[[np.ndarray], np.ndarray]


def calibrate(probability: ProbabilityFn, samples: Iterable[DamageSample]) -> tuple[float, dict[str, float]]:
    """The threshold with the best F1 at 2 px among those flagging at most :data:`CLEAN_BUDGET` of
    the clean pixels (if none does: the one flagging least); with its figures. ``samples`` may be
    made one at a time (a generator): each is counted and let go (held all at once, the end of
    a damage training took about 8 bytes a pixel: 2.9 GB for 120 photos of 3 MP)."""
    counts = {float(t): Counts() for t in THRESHOLDS}
    photos = 0
    for s in samples:
        p, pc = probability(s.damaged), probability(s.clean)
        for t, c in counts.items():
            c.add(p >= t, s.label, pc >= t)
        photos += 1
    ok = [t for t, c in counts.items() if c.clean_share <= CLEAN_BUDGET]
    if ok:
        best = max(ok, key=lambda t: counts[t].scores(TOLERANCE)[2])
    else:
        best = min(counts, key=lambda t: counts[t].clean_share)
    c = counts[best]
    return best, {
        "f1_2px": c.scores(TOLERANCE)[2],
        "clean_flagged": c.clean_share,
        "clean_budget": CLEAN_BUDGET,
        "within_budget": bool(ok),
        "photos": photos,
    }


def evaluate_detectors(
    probability: ProbabilityFn,
    threshold: float,
    data: str | Path,
    *,
    split: str = "val",
    limit: int | None = 300,
    seed: int = 14,
    progress: bool = True,
) -> list[DetectionScores]:
    """Ours at ``threshold`` and the classical detector on the same held-out samples; each also
    grown by :data:`GROW` px, as the masks that get filled are."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"the threshold must lie in (0, 1], got {threshold}")
    if limit is not None and limit < 0:
        raise ValueError(f"--limit must be at least 0 (0 = every photo), got {limit}")
    names = ("classical (top-hat/black-hat 9x9, >40)", "ours")
    counts = {(name, grow): Counts() for name in names for grow in (0, GROW)}
    photos = 0
    samples = damage_samples(data, split, limit, seed)
    for photo, s in tqdm(samples, total=limit, desc="damage evaluate", disable=not progress, unit="photo"):
        masks = {
            names[0]: (classical_detector(s.damaged), classical_detector(s.clean), classical_detector(photo)),
            names[1]: (
                probability(s.damaged) >= threshold,
                probability(s.clean) >= threshold,
                probability(photo) >= threshold,
            ),
        }
        for (name, grow), c in counts.items():
            found, clean, untouched = masks[name]
            c.add(_near(found, grow), s.label, _near(clean, grow), s.kinds)
            c.add_untouched(_near(untouched, grow))
        photos += 1
    if not photos:
        raise ValueError(f"no {split} photos found under {data}")
    return [
        DetectionScores.from_counts(
            name if not grow else f"{name}, grown {grow} px", photos, threshold if name == "ours" else None, c
        )
        for (name, grow), c in counts.items()
    ]


def format_kind_table(rows: list[DetectionScores]) -> list[str]:
    """Recall at 2 px per kind of damage (pooled F1 is dominated by wide marks; this shows the
    hairlines on their own)."""
    kinds = [k for k in KINDS if any(k in r.recall_by_kind for r in rows)]
    lines = ["| detector | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for r in rows:
        cells = [f"{r.recall_by_kind[k]:.3f}" if k in r.recall_by_kind else "-" for k in kinds]
        lines.append(f"| {r.method} | " + " | ".join(cells) + " |")
    return lines


def format_table(rows: list[DetectionScores]) -> list[str]:
    lines = [
        "| detector | threshold | P (0 px) | R (0 px) | F1 (0 px) | P (2 px) | R (2 px) | F1 (2 px) "
        "| flagged on clean photos | flagged on untouched photos |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = "-" if r.threshold is None else f"{r.threshold:.3f}"
        untouched = "-" if r.untouched_flagged is None else f"{100 * r.untouched_flagged:.2f}%"
        lines.append(
            f"| {r.method} | {t} | {r.precision0:.3f} | {r.recall0:.3f} | {r.f1_0:.3f} | {r.precision2:.3f} "
            f"| {r.recall2:.3f} | **{r.f1_2:.3f}** | {100 * r.clean_flagged:.2f}% | {untouched} |"
        )
    return lines


def write_report(path: Path, rows: list[DetectionScores], extra: dict[str, object]) -> None:
    from engine.atomic import write_text_atomic

    write_text_atomic(path, json.dumps({**extra, "rows": [asdict(r) for r in rows]}, indent=2) + "\n")
