"""The bundle's entry point: the same ``main()`` as the ``retoucher`` console script, so
``Retoucher``, ``Retoucher PHOTO``, ``Retoucher batch ...``, ``Retoucher --self-test`` and
``Retoucher --version`` all work from the frozen application."""

import multiprocessing
import sys

from retoucher.__main__ import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
