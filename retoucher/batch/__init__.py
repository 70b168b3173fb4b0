"""Folder retouching: fill the same kind of hole in every photo of a folder.

Shared by the command line (``retoucher batch INPUT_DIR OUTPUT_DIR ...``, see :func:`main`) and
the desktop app's batch dialog (:func:`run_batch` with progress and cancel callbacks).

Guarantees: inputs are only read; each output is written atomically (a temporary file renamed into
place), so an output that exists is complete and a re-run skips it unless ``overwrite`` is set
(a batch killed half-way resumes where it stopped, and removes the temporary file a hard kill
left next to one of its outputs); one bad file is reported and never stops the
batch; two inputs that would write the same output are reported instead of overwriting each
other. Under ``torchrun --nproc_per_node=N`` every rank takes every N-th file of the sorted list
(``RANK``/``WORLD_SIZE``) and its own GPU (``LOCAL_RANK``); at the end the ranks meet
(:mod:`engine.distributed`, gloo on the CPU) and all exit with the status of the whole batch, so
that a rank with a failed photo does not make torchrun stop the ranks still working.

``retoucher detect PHOTOS_DIR MASKS_DIR`` (:mod:`.detect`, :mod:`.detect_cli`) writes the damage
masks of a folder with the same rules, and ``--find-damage`` fills the damage found (with or
without a given hole); both use :func:`retoucher.damage.find_damage`, as the app does.

Modules: :mod:`.options` (options, mask spec, report), :mod:`.planning` (photos, masks, outputs,
collisions), :mod:`.holes` (each photo's given hole), :mod:`.ledger` (what every folder command
does around each photo: rank share, leftovers, done/skipped/failed, engine creation),
:mod:`.runner` (:func:`run_batch`), :mod:`.console` (the command-line flow, exit statuses and the
ranks' meeting), :mod:`.cli` (``retoucher batch``), :mod:`.detect` and :mod:`.detect_cli`
(``retoucher detect``). This package never imports torch; the engine is
imported when a batch actually runs (torchrun's variables are read by the torch-free
:mod:`engine.torchrun`).
"""

from .cli import build_parser, main
from .console import rank_from_env
from .detect import DetectOptions, DetectReport, plan_detect, run_detect
from .options import OUTPUT_FORMATS, BatchError, BatchOptions, BatchReport, MaskSpec, parse_rect, parse_size
from .planning import plan_batch
from .runner import run_batch

__all__ = [
    "BatchError",
    "MaskSpec",
    "BatchOptions",
    "BatchReport",
    "run_batch",
    "DetectOptions",
    "DetectReport",
    "plan_detect",
    "run_detect",
    "plan_batch",
    "parse_rect",
    "parse_size",
    "rank_from_env",
    "build_parser",
    "main",
    "OUTPUT_FORMATS",
]
