"""``python -m sr_core``: the command-line upscaler (same as ``upscaler``)."""

from __future__ import annotations

import sys

from sr_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
