"""Two CPU processes under torchrun (gloo): one writer, loadable weights."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import sr_core
from sr_core.training.export import export_run
from sr_core.training.loop import CHECKPOINT, HISTORY, RunState, load_checkpoint

REPO = Path(__file__).resolve().parents[2]


def test_ddp_two_processes(
    tmp_path: Path, train_dir: Path, valid_dir: Path, recipe_file: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(train_dir, data)
    (data / "broken.png").write_bytes(b"not an image")  # skipped, not fatal
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc_per_node=2", "-m", "sr_core.training", "train"]
    cmd += ["--data", str(data), "--valid", str(valid_dir), "--out", str(out)]
    cmd += ["--recipe", str(recipe_file), "--encoder", "resnet18", "--workers", "0"]
    cmd += ["--precision", "fp32", "--no-progress", "--valid-crop", "64"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "world 2" in proc.stdout
    # Only rank 0 reports and writes.
    assert proc.stdout.count("finished:") == 1, log[-3000:]
    assert proc.stdout.count("data: 4 train") == 1
    assert proc.stdout.count("skipped 1 unusable file") == 1
    assert "broken.png" in proc.stdout
    names = {p.name for p in out.iterdir()}  # no leftover temp files either
    assert names == {
        CHECKPOINT,
        HISTORY,
        "stage-s32.safetensors",
        "stage-s64.safetensors",
    }

    # 4 images over 2 ranks, batch 2 per rank: 1 step per epoch, 2 + 1 epochs.
    rows = (out / HISTORY).read_text().splitlines()
    assert len(rows) == 1 + 3
    state = RunState.from_json(load_checkpoint(out / CHECKPOINT)["state"])
    assert (state.stage, state.steps, state.samples) == (2, 3, 12)

    weights = export_run(out, tmp_path / "ddp.safetensors")
    model = sr_core.load_model(weights, device="cpu", precision="fp32")
    image = np.zeros((32, 40, 3), dtype=np.uint8)
    options = sr_core.UpscaleOptions(target=sr_core.Target.scale(2))
    assert sr_core.upscale(image, model, options).shape == (64, 80, 3)
