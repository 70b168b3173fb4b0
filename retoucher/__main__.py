"""The ``retoucher`` command: ``retoucher [PHOTO]`` opens the app, ``retoucher batch ...`` retouches
a folder (see :mod:`retoucher.batch`), ``retoucher detect ...`` writes the damage masks of a folder
(see :mod:`retoucher.batch.detect`), ``retoucher --version`` prints the version and the names of
the bundled model and damage detector, ``retoucher --self-test`` checks the installation headless
(see :mod:`retoucher.selftest`).

Nothing heavy is imported before it is needed: the GUI (PySide6) only for the app, the engine
(torch) only when a batch runs. Before the app starts Qt, :mod:`retoucher.platform_check` makes sure
on Linux that Qt's platform plugin can load, and says what to install when it can't.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

USAGE = """\
usage: retoucher [PHOTO]                 open the desktop app (optionally with a photo)
       retoucher batch INPUT_DIR OUTPUT_DIR (--masks DIR | --mask FILE | --rect X,Y,W,H |
                       --center-hole SIZE) [options]
                                         fill holes in every photo of a folder
       retoucher batch INPUT_DIR OUTPUT_DIR --find-damage [hole option] [options]
                                         fill the damage found (and the given hole)
       retoucher detect PHOTOS_DIR MASKS_DIR [--threshold T] [--dilate PX] [options]
                                         write a damage mask for every photo of a folder
       retoucher --self-test [--device DEV]
                                         fill a hole in the sample photo and find damage
                                         in it, check both (headless)
       retoucher --version               print the version and the bundled models' names

'retoucher batch --help' and 'retoucher detect --help' list their options.
"""


def version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        return dist_version("retoucher")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def model_description() -> str:
    """The default model's name from its weight file header, or why there is none."""
    from engine.weights import default_weights_path, read_weights_info

    return _describe(default_weights_path(), read_weights_info, "model")


def detector_description() -> str:
    """The bundled damage detector's name from its weight file header, or why there is none."""
    from engine.damage import default_damage_weights_path, read_damage_info

    return _describe(default_damage_weights_path(), read_damage_info, "damage detector")


def _describe(path: Path, read_info: Callable[[Path], Any], what: str) -> str:
    from engine.weights import WeightsError

    if not path.is_file():
        return f"no {what} bundled (expected {path})"
    try:
        info = read_info(path)
    except WeightsError as exc:
        return f"unusable {what} file ({exc})"
    return f"{info.name} ({path})"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "batch":
        from .batch import main as batch_main

        return batch_main(args[1:])
    if args and args[0] == "detect":
        from .batch.detect_cli import main as detect_main

        return detect_main(args[1:])
    if args and args[0] == "--self-test":
        from .selftest import main as selftest_main

        return selftest_main(args[1:])
    if args and args[0] in ("--version", "-V", "-h", "--help"):
        if len(args) > 1:  # ignored without a word before ("retoucher --version --bogus": 0)
            print(f"retoucher: error: {args[0]} takes no arguments: {' '.join(args[1:])}", file=sys.stderr)
            return 2
        if args[0] in ("-h", "--help"):
            return _print(USAGE)
        return _print(
            f"retoucher {version()}\nmodel: {model_description()}\n"
            f"damage detector: {detector_description()}\n"
        )
    if len(args) > 1 or (args and args[0].startswith("-")):
        print(USAGE, end="", file=sys.stderr)
        print(f"retoucher: error: unexpected arguments: {' '.join(args)}", file=sys.stderr)
        return 2
    return open_app(args[0] if args else None)


def _print(text: str) -> int:
    """``text`` on stdout; a reader that went away (``| head -1``) is no error (it was a
    BrokenPipeError traceback), nor is no stdout at all (closed; a windowed Windows build)."""
    if sys.stdout is None:
        return 0
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's own flush at exit would fail on the closed pipe again: point stdout elsewhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def open_app(photo: str | None) -> int:
    """Start the desktop app, unless Qt could not start its platform plugin here: then say why
    (missing system libraries and the apt-get line, or no display) and return 1 before Qt starts."""
    from .platform_check import platform_problem

    problem = platform_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    from retoucher.qt.app import run_app

    return run_app(photo)


if __name__ == "__main__":
    sys.exit(main())
