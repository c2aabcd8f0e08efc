"""Build the CPU one-folder app from a clean venv and self-test the frozen executables.

Runs packaging/build_linux.sh (without the .tar.gz/.deb step) into a temporary
folder, moves the bundle elsewhere and starts ``upscaler-cli`` and ``Upscaler``
from an unrelated directory with PYTHONPATH unset and a minimal PATH, so neither
the source tree nor the dev venv can help.  Uses tiny random weights passed
with ``--weights``.  About 15 minutes here (docs/packaging.md); needs a CPU torch
wheel: ``UPSCALER_TORCH`` (a wheel file or requirement), else a ``torch-*+cpu``
wheel in pip's find-links folders, else PyTorch's CPU index if reachable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import make_tiny_weights

ROOT = Path(__file__).resolve().parents[2]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux build only"),
    pytest.mark.skipif(
        os.environ.get("UPSCALER_TEST_BUNDLE") == "0", reason="UPSCALER_TEST_BUNDLE=0"
    ),
]


def _find_links() -> list[Path]:
    dirs = os.environ.get("PIP_FIND_LINKS", "").split()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.find-links"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        dirs += out.split()
    except (OSError, subprocess.SubprocessError):
        pass
    return [
        Path(d.removeprefix("file://"))
        for d in dirs
        if "://" not in d.removeprefix("file://")
    ]


def _cpu_torch() -> str | None:
    """A pip argument for a CPU-only torch, or None (then the index is used)."""
    if os.environ.get("UPSCALER_TORCH"):
        return os.environ["UPSCALER_TORCH"]
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    arch = sysconfig.get_platform().rsplit("-", 1)[-1]
    for folder in _find_links():
        wheels = sorted(folder.glob(f"torch-*+cpu-{tag}-{tag}-*{arch}.whl"))
        if wheels:
            return str(wheels[-1])
    return None


def _index_reachable() -> bool:
    try:
        with urllib.request.urlopen(f"{CPU_INDEX}/torch/", timeout=10):
            return True
    except OSError:
        return False


def _isolated_env(home: Path) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_RUNTIME_DIR": str(home / "runtime"),
        "QT_QPA_PLATFORM": "offscreen",
        "LANG": "C.UTF-8",
    }
    (home / "runtime").mkdir(parents=True, exist_ok=True, mode=0o700)
    return env


def _clean(output: str) -> None:
    assert "Traceback" not in output, output[-3000:]
    assert "ModuleNotFoundError" not in output, output[-3000:]


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _gui_startup(exe: Path, weights: Path, cwd: Path, env: dict[str, str]):
    """Run the GUI self-test; returns (exit code, output, seconds to startup line)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(exe), "--self-test", "--device", "cpu", "--weights", str(weights)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines, startup = [], None
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if startup is None and "startup complete" in line:
            startup = time.perf_counter() - start
    return proc.wait(timeout=300), "".join(lines), startup


def test_frozen_app_self_tests_without_the_source_tree(tmp_path: Path) -> None:
    torch_arg = _cpu_torch()
    if torch_arg is None and not _index_reachable():
        pytest.skip(f"no CPU torch: set UPSCALER_TORCH or make {CPU_INDEX} reachable")
    if shutil.which("objdump") is None:
        pytest.skip("PyInstaller needs objdump (binutils)")
    weights = make_tiny_weights(tmp_path / "weights" / "tiny.safetensors")
    build = tmp_path / "build"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env.update(
        PYTHON=sys._base_executable,  # a clean venv, not one nested in the dev venv
        UPSCALER_VARIANT="cpu",
        UPSCALER_BUILD_VENV=str(build / "venv"),
        UPSCALER_WORK=str(build / "work"),
        UPSCALER_DIST=str(build / "dist"),
        UPSCALER_SKIP_ARCHIVES="1",
        UPSCALER_SELFTEST_WEIGHTS=str(weights),
    )
    if torch_arg:
        env["UPSCALER_TORCH"] = torch_arg
    started = time.perf_counter()
    built = subprocess.run(
        ["bash", str(ROOT / "packaging" / "build_linux.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=45 * 60,
    )
    build_seconds = time.perf_counter() - started
    assert built.returncode == 0, built.stderr[-5000:] + built.stdout[-2000:]

    # Move the app away from the build tree and run it from an unrelated folder.
    app = shutil.move(str(build / "dist" / "Upscaler"), str(tmp_path / "installed"))
    app = Path(app)
    shutil.rmtree(build)
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    iso = _isolated_env(tmp_path / "home")
    cli = app / "upscaler-cli"

    version = _run([str(cli), "--version"], run_dir, iso)
    _clean(version.stdout + version.stderr)
    assert version.stdout.startswith("upscaler 0."), version.stdout

    ok = _run([str(cli), "--self-test", "--weights", str(weights)], run_dir, iso)
    _clean(ok.stdout + ok.stderr)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert ok.stdout.startswith("Upscaler self-test OK"), ok.stdout
    assert "32×32 to 64×64" in ok.stdout

    # Without --weights the bundled weights are used, when the repo ships any.
    bundled = _run([str(cli), "--self-test"], run_dir, iso)
    _clean(bundled.stdout + bundled.stderr)
    if sorted((ROOT / "weights").glob("*.safetensors")):
        assert bundled.returncode == 0, bundled.stderr[-3000:]
        assert bundled.stdout.startswith("Upscaler self-test OK"), bundled.stdout
    else:
        assert bundled.returncode == 1
        assert "self-test FAILED: No trained weights found" in bundled.stderr

    gone = {**iso, "UPSCALER_WEIGHTS": str(tmp_path / "missing.safetensors")}
    missing = _run([str(cli), "--self-test"], run_dir, gone)
    _clean(missing.stdout + missing.stderr)
    assert missing.returncode == 1
    assert "self-test FAILED: Weights file not found" in missing.stderr

    code, output, startup = _gui_startup(app / "Upscaler", weights, run_dir, iso)
    _clean(output)
    assert code == 0, output[-3000:]
    assert "Upscaler startup complete" in output
    assert "upscaled 32×32 to 64×64" in output
    assert not list(app.rglob("*.pyc")), "the frozen app wrote into its own folder"
    print(  # noqa: T201 - timings for the report (pytest -s)
        f"\nbundle build {build_seconds:.0f} s; GUI startup {startup:.1f} s; "
        f"CLI self-test: {ok.stdout.strip()}"
    )
