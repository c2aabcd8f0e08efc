"""glibc malloc tuning: freed large blocks stay mapped for reuse until released.

Each case runs in a fresh interpreter: mallopt settings are process-wide and
must not leak into the rest of the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

glibc_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="glibc malloc tuning only applies on glibc Linux",
)

# Allocate, touch and free a 256 MiB block in a worker thread (where the app
# runs the model), and report resident memory after each step.
PROBE = textwrap.dedent(
    """
    import ctypes, json, sys, threading
    import sr_core

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    page = __import__("os").sysconf("SC_PAGE_SIZE")

    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page / 2**20

    out = {"tuned": sr_core.keep_freed_memory() if "tune" in sys.argv else False}

    def work():
        size = 256 * 2**20
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        out["while_used"] = rss_mib()
        libc.free(block)
        out["after_free"] = rss_mib()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    sr_core.release_free_memory()
    out["after_release"] = rss_mib()
    out["torch_imported"] = "torch" in sys.modules
    print(json.dumps(out))
    """
)


def _probe(*args: str, env: dict[str, str] | None = None) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@glibc_only
def test_tuned_heap_keeps_freed_blocks_until_released():
    res = _probe("tune")
    assert res["tuned"] is True
    # Freed but kept: the next activation of that size reuses the pages.
    assert res["after_free"] > res["while_used"] - 32
    # Released when asked (the app does this once its queue is idle).
    assert res["after_release"] < res["while_used"] - 200


@glibc_only
def test_default_glibc_unmaps_large_blocks_at_once():
    # The behaviour the tuning exists to avoid: the pages go at free().
    res = _probe()
    assert res["tuned"] is False
    assert res["after_free"] < res["while_used"] - 200


@glibc_only
def test_environment_switch_keeps_glibc_defaults():
    res = _probe("tune", env={"UPSCALER_MALLOC_TUNING": "0"})
    assert res["tuned"] is False
    assert res["after_free"] < res["while_used"] - 200


def test_tuning_does_not_import_torch():
    # The app calls it on the GUI thread at startup, where torch must not load.
    res = _probe("tune")
    assert res["torch_imported"] is False


def test_calls_are_idempotent():
    from sr_core import keep_freed_memory, release_free_memory

    first = keep_freed_memory()
    assert keep_freed_memory() == first
    release_free_memory()  # safe whether or not the tuning applied
