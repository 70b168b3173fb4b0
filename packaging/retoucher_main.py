"""The bundle's entry point: the same ``main()`` as the ``retoucher`` console script, so
``Retoucher``, ``Retoucher PHOTO``, ``Retoucher batch ...``, ``Retoucher --self-test`` and
``Retoucher --version`` all work from the frozen application; and the child that writes a
TIFF for the app (engine.imageio) when started with ``--engine-write-picture``."""

import multiprocessing
import sys

from retoucher.__main__ import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    if sys.argv[1:] == ["--engine-write-picture"]:  # engine.imageio.CHILD_WRITER_FLAG: a TIFF's
        from engine.imageio import _child_writes  # compression, off the app's process

        _child_writes()
        sys.exit(0)
    sys.exit(main())
