"""Entry point of the frozen GUI executable ``Upscaler`` (see build.spec)."""

import sys

from app.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
