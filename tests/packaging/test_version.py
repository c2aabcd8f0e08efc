"""One version everywhere: sr_core.__version__ is the only place it is written."""

from __future__ import annotations

import importlib.util
from importlib.metadata import version
from pathlib import Path

import sr_core
from app.__main__ import VERSION

ROOT = Path(__file__).resolve().parents[2]


def test_app_cli_package_and_installers_agree() -> None:
    spec = importlib.util.spec_from_file_location(
        "packaging_version", ROOT / "packaging" / "version.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert sr_core.__version__ == VERSION
    assert module.package_version() == sr_core.__version__
    assert version("upscaler") == sr_core.__version__
