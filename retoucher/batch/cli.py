"""``retoucher batch INPUT_DIR OUTPUT_DIR ...``: the command line of :func:`run_batch`, with a
progress bar, exit statuses (0 all good, 1 some photos failed, 2 usage error, 130 interrupted)
and, under ``torchrun``, each rank's share and the meeting of the ranks at the end so that all
exit with the status of the whole batch.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .options import OUTPUT_FORMATS, BatchError, BatchOptions, BatchReport, MaskSpec
from .runner import run_batch

__all__ = ["build_parser", "main", "rank_from_env"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def build_parser(prog: str = "retoucher batch") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description=(
            "Fill a hole in every photo of INPUT_DIR and write the results to OUTPUT_DIR "
            "(same file names). Inputs are never modified; finished outputs are skipped on a "
            "re-run unless --overwrite. Exit status: 0 all good, 1 some photos failed, "
            "2 usage error. Runs under 'torchrun --nproc_per_node=N' too (each rank takes its "
            "share of the files; all ranks exit with the status of the whole batch)."
        ),
    )
    p.add_argument("input_dir", metavar="INPUT_DIR", type=Path, help="folder of photos")
    p.add_argument("output_dir", metavar="OUTPUT_DIR", type=Path, help="where the results go")
    m = p.add_argument_group("hole (exactly one)").add_mutually_exclusive_group(required=True)
    m.add_argument(
        "--masks",
        metavar="DIR",
        type=Path,
        help="folder of PNG masks named <stem>.png or <stem>_mask.png, white = hole "
        "(only <stem>_mask.png when DIR is INPUT_DIR: masks next to the photos)",
    )
    m.add_argument("--mask", metavar="FILE", type=Path, help="one mask for every photo")
    m.add_argument("--rect", metavar="X,Y,W,H", help="a rectangular hole, in pixels")
    m.add_argument("--center-hole", metavar="SIZE", help="a centred square hole of SIZE (or WxH) pixels")
    p.add_argument(
        "--weights",
        metavar="PATH",
        type=Path,
        help="model weights (.safetensors); default: the bundled model",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument(
        "--format", default="same", choices=OUTPUT_FORMATS, help="output format (default: same as the input)"
    )
    p.add_argument(
        "--quality",
        type=int,
        default=None,
        help="JPEG/WebP quality 1-100 (default: a JPEG written from a JPEG keeps the "
        "original's quantisation, anything else 95)",
    )
    p.add_argument("--overwrite", action="store_true", help="redo photos whose output exists")
    p.add_argument(
        "--recursive", action="store_true", help="include sub-folders (outputs keep the sub-folder layout)"
    )
    p.add_argument(
        "--rank-timeout",
        metavar="MINUTES",
        type=float,
        default=60.0,
        help="under torchrun: how long a rank that has finished its share waits for the "
        "others, to exit with the status of the whole batch (default 60)",
    )
    return p


def rank_from_env(environ: Mapping[str, str] | None = None) -> tuple[int, int, int | None]:
    """(rank, world_size, local_rank) as torchrun sets them; (0, 1, None) otherwise.

    Read by :func:`engine.torchrun.torchrun_env`; its complaint about a variable that is not an
    integer, or a rank outside the world, is raised as a :class:`BatchError`.
    """
    from engine.torchrun import torchrun_env

    try:
        env = torchrun_env(environ)
    except ValueError as exc:
        raise BatchError(str(exc)) from exc
    return env.rank, env.world_size, env.local_rank


def main(argv: Sequence[str] | None = None, *, prog: str = "retoucher batch") -> int:
    """``retoucher batch`` command line; returns the exit status."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        options = _options(args)
        rank, world, local_rank = rank_from_env()
        if not args.rank_timeout > 0:
            raise ValueError(f"--rank-timeout must be a positive number of minutes, got {args.rank_timeout}")
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except (_UsageError, ValueError) as exc:
        parser.print_usage(sys.stderr)
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    who = f"[rank {rank}/{world}] " if world > 1 else ""
    report = _run_with_progress_bar(options, prog, who, rank, world, local_rank)
    if not isinstance(report, BatchReport):
        return report
    print(report.summary(), flush=True)
    counts = [len(report.done), len(report.skipped), len(report.failed), report.total]
    if world > 1:
        counts = _combine_ranks(counts, args.rank_timeout * 60, prog, who, rank, world)
    if counts[3] == 0 and rank == 0:
        print(
            f"{prog}: no photos found in {options.input_dir}"
            + ("" if options.recursive else " (use --recursive for sub-folders)"),
            file=sys.stderr,
        )
    return EXIT_OK if not counts[2] else EXIT_FAILED


def _options(args: argparse.Namespace) -> BatchOptions:
    """The options the command line asks for; ValueError for a bad value."""
    if args.masks is not None:
        masks = MaskSpec("dir", args.masks)
    elif args.mask is not None:
        masks = MaskSpec("file", args.mask)
    elif args.rect is not None:
        masks = MaskSpec("rect", args.rect)
    else:
        masks = MaskSpec("center", args.center_hole)
    return BatchOptions(
        input_dir=args.input_dir,
        output_dir=args.output_dir,
        masks=masks,
        weights=args.weights,
        device=args.device,
        format=args.format,
        overwrite=args.overwrite,
        recursive=args.recursive,
        quality=args.quality,
    )


def _run_with_progress_bar(
    options: BatchOptions, prog: str, who: str, rank: int, world: int, local_rank: int | None
) -> BatchReport | int:
    """This rank's batch under a progress bar (rank 0 only): its report, or the exit status
    when it stopped as a whole (a :class:`BatchError`, Ctrl+C), after saying why on stderr."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    # The engine's warnings (metadata dropped, a JPEG re-encoded whole) go through logging: give
    # them a line of their own above the bar, named like our other messages.
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format=f"{prog}: {who}%(levelname)s: %(message)s")
    # Started before the work (model loading included), so its rate is photos per second of the
    # whole run; a bar started at the first finished photo showed thousands of photos/s.
    bar = tqdm(total=None, unit="photo", desc="retouching", disable=rank != 0, dynamic_ncols=True)

    def progress(finished: int, total: int, name: str) -> None:
        bar.total = total
        bar.set_postfix_str(name[-40:], refresh=False)
        bar.update(finished - bar.n)

    try:
        with logging_redirect_tqdm():
            return run_batch(options, progress=progress, rank=rank, world_size=world, local_rank=local_rank)
    except BatchError as exc:
        print(f"{prog}: {who}error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\n{prog}: {who}interrupted; finished outputs are kept, a re-run resumes", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()


def _combine_ranks(
    counts: list[int], timeout_s: float, prog: str, who: str, rank: int, world: int
) -> list[int]:
    """Sum the ranks' counts so that every rank exits with the status of the whole batch
    (torchrun stops all ranks when one exits non-zero: a rank with a failed photo must not stop
    the others before they finish). If the ranks cannot meet, this rank's own counts."""
    from engine.distributed import RankMeetingError, joined_ranks

    try:
        with joined_ranks(timeout_s) as group:
            total = group.sum(counts)
            if rank == 0:
                print(
                    "all {} ranks: done {}, skipped {}, failed {} (of {})".format(world, *total), flush=True
                )
            group.barrier()  # nobody exits (and gets the others stopped) before that line is out
        return total
    except RankMeetingError as exc:
        print(f"{prog}: {who}warning: {exc}; the exit status covers this rank's photos only", file=sys.stderr)
        return counts
