"""The version every package format uses, read from ``sr_core.__version__``.

Parsed, not imported, so the build needs neither torch nor the project installed.
``python packaging/version.py`` prints it (build_linux.sh, the Inno Setup call).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package_version(root: Path = ROOT) -> str:
    """``sr_core.__version__`` from ``<root>/sr_core/__init__.py``."""
    tree = ast.parse((root / "sr_core" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            return str(ast.literal_eval(node.value))
    raise SystemExit(f"no __version__ in {root / 'sr_core' / '__init__.py'}")


if __name__ == "__main__":
    print(package_version())  # noqa: T201
