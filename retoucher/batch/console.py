"""The command-line flow that ``retoucher batch`` and ``retoucher detect`` share: parse (a bad
value is a usage error, exit 2), read torchrun's rank, run this rank's share under a progress bar,
print the summary, let the ranks meet so that all exit with the status of the whole run, and
return the exit status: 0 all good, 1 some photos failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from engine.stop_request import StopRequest

from .ledger import BatchProgressFn
from .options import BatchError, BatchReport

if TYPE_CHECKING:  # pragma: no cover
    from ..inpainting import DetectorFactory

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Parser",
    "add_run_options",
    "rank_from_env",
    "run_command",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are returned as exit status 2 instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options every folder command has: device, overwrite, recursive, progress, ranks."""
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--overwrite", action="store_true", help="redo photos whose output exists")
    p.add_argument(
        "--recursive", action="store_true", help="include sub-folders (outputs keep the sub-folder layout)"
    )
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar (the summary is still printed)"
    )
    p.add_argument(
        "--rank-timeout",
        metavar="MINUTES",
        type=float,
        default=60.0,
        help="under torchrun: how long a rank that has finished its share waits for the "
        "others, to exit with the status of the whole run (default 60)",
    )


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


class _FolderOptions(Protocol):
    input_dir: Path
    recursive: bool


Opts = TypeVar("Opts", bound=_FolderOptions)
RunFn = Callable[..., BatchReport]
"""``run(options, *, detector_factory, progress, cancel, rank, world_size, local_rank)`` -> this rank's
report (:func:`.runner.run_batch`, :func:`.detect.run_detect`)."""


def run_command(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    make_options: Callable[[argparse.Namespace], Opts],
    run: RunFn,
    *,
    prog: str,
    doing: str,
    detector_factory: DetectorFactory | None = None,
) -> int:
    """Parse ``argv``, run this rank's share under a progress bar described as ``doing``,
    print the summary and return the exit status (see the module docstring).
    ``detector_factory`` goes to ``run`` (tests inject fakes; None: the engine's)."""
    # a file name that is not UTF-8 (an old camera card's Latin-1 name) is printed escaped: under
    # a UTF-8 locale Python's stdout is strict, and the summary naming it raised at the very end
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="backslashreplace")
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        options = make_options(args)
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
    bar_shown = rank == 0 and not args.no_progress
    stop = StopRequest(
        second_interrupts=True,
        on_request=lambda why: print(
            f"\n{prog}: {who}stopping after the photo in hand ({why}; again to stop at once)",
            file=sys.stderr,
            flush=True,
        ),
    )
    with stop:
        report = _run_with_progress_bar(
            lambda progress: run(
                options,
                detector_factory=detector_factory,
                progress=progress,
                stop=stop,
                rank=rank,
                world_size=world,
                local_rank=local_rank,
            ),
            prog,
            who,
            doing,
            bar_shown,
        )
        if not isinstance(report, BatchReport):
            return report
        try:  # a second Ctrl+C while it prints: the exit status, not a traceback
            print(report.summary(), flush=True)
            if stop.requested:  # the ranks stopped each on its own: no meeting (one may be gone)
                print(
                    f"{prog}: {who}interrupted; finished outputs are kept, a re-run resumes", file=sys.stderr
                )
                return EXIT_INTERRUPTED
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    counts = report.counts()
    if world > 1:
        counts = _combine_ranks(report, counts, args.rank_timeout * 60, prog, who, rank, world)
    if counts[3] == 0 and rank == 0:
        print(
            f"{prog}: no photos found in {options.input_dir}"
            + ("" if options.recursive else " (use --recursive for sub-folders)"),
            file=sys.stderr,
        )
    return EXIT_OK if not counts[2] else EXIT_FAILED


def _run_with_progress_bar(
    run: Callable[[BatchProgressFn], BatchReport], prog: str, who: str, doing: str, shown: bool
) -> BatchReport | int:
    """``run(progress)`` under a progress bar (when ``shown``): its report, or the exit status
    when it stopped as a whole (a :class:`BatchError`, Ctrl+C), after saying why on stderr."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    # The engine's warnings (metadata dropped, a JPEG re-encoded whole) go through logging: give
    # them a line of their own above the bar, named like our other messages.
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format=f"{prog}: {who}%(levelname)s: %(message)s")
    # Started before the work (model loading included), so its rate is photos per second of the
    # whole run; a bar started at the first finished photo showed thousands of photos/s.
    # (None: tqdm's own rule, no bar when stderr is no terminal: a log or a pipe got its "\r" lines)
    bar = tqdm(total=None, unit="photo", desc=doing, disable=None if shown else True, dynamic_ncols=True)

    def progress(finished: int, total: int, name: str) -> None:
        bar.total = total
        bar.set_postfix_str(name[-40:], refresh=False)
        bar.update(finished - bar.n)

    try:
        with logging_redirect_tqdm(), warnings.catch_warnings():
            # and its Python warnings (a multi-page file of which only the first page is
            # kept): the same line, not Python's "file:line: Category:" form
            warnings.showwarning = _log_warning
            return run(progress)
    except BatchError as exc:
        bar.close()  # first: the message was glued to the bar's line, and the bar drawn again after it
        print(f"{prog}: {who}error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # a second Ctrl+C: no summary
        bar.close()
        print(f"\n{prog}: {who}interrupted; finished outputs are kept, a re-run resumes", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:
    logging.getLogger("retoucher.batch").warning("%s", message)


def _combine_ranks(
    report: BatchReport, counts: list[int], timeout_s: float, prog: str, who: str, rank: int, world: int
) -> list[int]:
    """Sum the ranks' counts so that every rank exits with the status of the whole run
    (torchrun stops all ranks when one exits non-zero: a rank with a failed photo must not stop
    the others before they finish). If the ranks cannot meet, this rank's own counts."""
    from engine.distributed import RankMeetingError, joined_ranks

    try:
        with joined_ranks(timeout_s) as group:
            total = group.sum(counts)
            if rank == 0:
                print(f"all {world} ranks: {report.headline(total)}", flush=True)
            group.barrier()  # nobody exits (and gets the others stopped) before that line is out
        return total
    except RankMeetingError as exc:
        print(f"{prog}: {who}warning: {exc}; the exit status covers this rank's photos only", file=sys.stderr)
        return counts
