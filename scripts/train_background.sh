#!/usr/bin/env bash
# Start, or resume, the standard CPU training run in the background.
#
#   scripts/train_background.sh [extra upscaler-train options...]
#
# Always passes --resume: with a checkpoint in the run folder the run continues
# where it stopped, without one a new run starts. Extra options go to
# `python -m sr_core.training train` (e.g. --max-steps 500, --threads 2).
#
# Settings (environment variables, defaults in brackets):
#   RUN_DIR    run folder: checkpoint, history.csv, log, pid  [$HOME/upscaler-runs/cpu-r34]
#   DATA_DIR   HR training images                            [<repo>/../shared/data/train]
#   VALID_DIR  HR validation images                          [<repo>/../shared/data/valid]
#   RECIPE     shipped recipe name or TOML file              [cpu]
#   ENCODER    resnet18 | resnet34 | resnet50                [resnet34]
#   WORKERS    DataLoader worker processes                   [1]
#   NICE       niceness; below 0 needs root                  [-10 as root, else 10]
#   PYTHON     interpreter                                   [<repo>/.venv/bin/python, else python3]
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${RUN_DIR:-$HOME/upscaler-runs/cpu-r34}"
DATA_DIR="${DATA_DIR:-$repo/../shared/data/train}"
VALID_DIR="${VALID_DIR:-$repo/../shared/data/valid}"
RECIPE="${RECIPE:-cpu}"
ENCODER="${ENCODER:-resnet34}"
WORKERS="${WORKERS:-1}"
if [ -z "${NICE:-}" ]; then
  if [ "$(id -u)" = 0 ]; then NICE=-10; else NICE=10; fi
fi
if [ -z "${PYTHON:-}" ]; then
  for candidate in "${UPSCALER_VENV:-$repo/.venv}/bin/python" "$(command -v python3 || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then PYTHON="$candidate"; break; fi
  done
fi
: "${PYTHON:?no python found: set PYTHON}"

for dir in "$DATA_DIR" "$VALID_DIR"; do
  if [ ! -d "$dir" ]; then
    echo "error: image folder not found: $dir (set DATA_DIR / VALID_DIR)" >&2
    exit 2
  fi
done
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
VALID_DIR="$(cd "$VALID_DIR" && pwd)"

mkdir -p "$RUN_DIR"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
log="$RUN_DIR/train.log"
pidfile="$RUN_DIR/train.pid"

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "A run is already going in $RUN_DIR (pid $(cat "$pidfile"))." >&2
  echo "Follow it with: tail -f $log" >&2
  exit 1
fi

if [ -f "$RUN_DIR/last.ckpt" ]; then what="Resuming"; else what="Starting"; fi
{
  echo
  echo "=== $(date '+%Y-%m-%d %H:%M:%S') $what: recipe $RECIPE, encoder $ENCODER, nice $NICE"
} >>"$log"

cd "$repo"  # so `python -m sr_core.training` runs this checkout's code
# nice and nohup exec the command, so $! is the Python process itself: a plain
# `kill` (SIGTERM) reaches the trainer, which checkpoints and exits.
nohup nice -n "$NICE" "$PYTHON" -m sr_core.training train \
  --data "$DATA_DIR" --valid "$VALID_DIR" --out "$RUN_DIR" \
  --recipe "$RECIPE" --encoder "$ENCODER" --workers "$WORKERS" \
  --checkpoint-minutes 10 --no-progress --resume "$@" \
  >>"$log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$pidfile"

cat <<EOF
$what training in the background (pid $pid).
  run folder:  $RUN_DIR
  log:         $log
Check progress:
  tail -f $log                              # a line a minute, one per epoch
  column -s, -t < $RUN_DIR/history.csv | less -S   # per-epoch losses and PSNR
  kill -0 \$(cat $pidfile) && echo running
Stop (a checkpoint is written first, then it exits; run this script again to resume):
  kill \$(cat $pidfile)
Export the current weights at any time:
  $PYTHON -m sr_core.training export $RUN_DIR --out weights/my-model.safetensors
EOF
