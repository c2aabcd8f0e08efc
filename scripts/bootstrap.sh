# Sourced by ./run and ./test: creates the virtual environment on first use and
# reinstalls when pyproject.toml changes. Override the location with UPSCALER_VENV.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${UPSCALER_VENV:-$here/.venv}"
PY="${PYTHON:-python3}"
stamp="$VENV/.upscaler-installed"
if command -v sha256sum >/dev/null 2>&1; then
  want="$(sha256sum "$here/pyproject.toml" | cut -d' ' -f1)"
else  # macOS
  want="$(shasum -a 256 "$here/pyproject.toml" | cut -d' ' -f1)"
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating virtual environment in $VENV ..." >&2
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing Upscaler and its dependencies (first run only) ..." >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
  "$VENV/bin/python" -m pip install --quiet -e "$here[dev,train]" >&2
  echo "$want" > "$stamp"
fi
export VENV
