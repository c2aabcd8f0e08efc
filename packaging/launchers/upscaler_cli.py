"""Entry point of the frozen command-line executable ``upscaler-cli`` (build.spec)."""

import sys

from sr_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
