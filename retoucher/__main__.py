"""The ``retoucher`` command: ``retoucher [PHOTO]`` opens the app, ``retoucher batch ...`` retouches
a folder (see :mod:`retoucher.batch`), ``retoucher --version`` prints the version.

Nothing heavy is imported before it is needed: the GUI (PySide6) only for the app, the engine
(torch) only when a batch runs.
"""
from __future__ import annotations

import sys
from typing import Sequence

USAGE = """\
usage: retoucher [PHOTO]                 open the desktop app (optionally with a photo)
       retoucher batch INPUT_DIR OUTPUT_DIR (--masks DIR | --mask FILE | --rect X,Y,W,H |
                       --center-hole SIZE) [options]
                                         fill holes in every photo of a folder
       retoucher --version

'retoucher batch --help' lists the batch options.
"""


def version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version as dist_version

        return dist_version("retoucher")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "batch":
        from .batch import main as batch_main

        return batch_main(args[1:])
    if args and args[0] in ("--version", "-V"):
        print(f"retoucher {version()}")
        return 0
    if args and args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0
    if len(args) > 1 or (args and args[0].startswith("-")):
        print(USAGE, end="", file=sys.stderr)
        print(f"retoucher: error: unexpected arguments: {' '.join(args)}", file=sys.stderr)
        return 2
    from retoucher.qt.app import run_app

    return run_app(args[0] if args else None)


if __name__ == "__main__":
    sys.exit(main())
