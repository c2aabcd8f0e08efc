# Sourced by ./run and ./test: creates the virtual environment on first use and
# reinstalls when pyproject.toml changes. Override the location with UPSCALER_VENV
# and the interpreter that makes it with PYTHON.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${UPSCALER_VENV:-$here/.venv}"
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac  # ./test changes directory
PY="${PYTHON:-python3}"
stamp="$VENV/.upscaler-installed"
if command -v sha256sum >/dev/null 2>&1; then
  want="$(sha256sum "$here/pyproject.toml" | cut -d' ' -f1)"
else  # macOS
  want="$(shasum -a 256 "$here/pyproject.toml" | cut -d' ' -f1)"
fi
_upscaler_python_ok() {  # Python 3.10+ that runs
  "$1" -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1
}
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # Not installed yet, or pyproject changed. A venv half-made (e.g. ensurepip
  # missing on Debian) or from too old a Python is made again, not reused.
  if ! _upscaler_python_ok "$VENV/bin/python" ||
    ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    if ! _upscaler_python_ok "$PY"; then
      echo "Upscaler needs Python 3.10 or newer, and '$PY' is missing or older." >&2
      echo "Install one, then run again with e.g. PYTHON=python3.11." >&2
      exit 1
    fi
    echo "Creating virtual environment in $VENV ..." >&2
    if ! "$PY" -m venv --clear "$VENV"; then
      echo "Could not create $VENV. On Debian/Ubuntu: sudo apt install python3-venv" >&2
      exit 1
    fi
  fi
  echo "Installing Upscaler and its dependencies (first run only) ..." >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
  "$VENV/bin/python" -m pip install --quiet -e "$here[dev,train]" >&2
  echo "$want" > "$stamp"
fi
export VENV
