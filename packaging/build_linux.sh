#!/usr/bin/env bash
# Builds the Linux deliverables from a clean virtual environment (docs/packaging.md):
#   dist/Upscaler/                                  the one-folder app (GUI + CLI)
#   dist/upscaler-VERSION-linux-x86_64-VARIANT.tar.gz
#   dist/upscaler_VERSION_amd64.deb                 installs under /opt/upscaler
#
# Environment (all optional):
#   UPSCALER_VARIANT       cpu (default) or gpu
#   UPSCALER_TORCH         torch to build against: a wheel file or a requirement
#                          (e.g. a local CPU wheel); the matching torchvision then
#                          comes from PyPI.  Unset: the CPU variant installs torch +
#                          torchvision from PyTorch's CPU index (UPSCALER_TORCH_INDEX)
#   UPSCALER_TORCH_INDEX   default https://download.pytorch.org/whl/cpu
#   UPSCALER_BUILD_VENV    build venv (default build/venv-VARIANT; reused if present)
#   UPSCALER_DIST          output folder (default dist)
#   UPSCALER_WORK          PyInstaller's work folder (default build/pyinstaller-VARIANT)
#   UPSCALER_SELFTEST_WEIGHTS  weights for the post-build self-test when none are bundled
#   UPSCALER_SKIP_ARCHIVES=1   stop after the one-folder app (no .tar.gz / .deb)
#   PYTHON                 interpreter for the venv (default python3, >= 3.10)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
variant="${UPSCALER_VARIANT:-cpu}"
venv="${UPSCALER_BUILD_VENV:-$here/build/venv-$variant}"
dist="$(mkdir -p "${UPSCALER_DIST:-$here/dist}" && cd "${UPSCALER_DIST:-$here/dist}" && pwd)"
work="${UPSCALER_WORK:-$here/build/pyinstaller-$variant}"
index="${UPSCALER_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
version="$("${PYTHON:-python3}" packaging/version.py)"
nice="nice -n 10"  # the build is heavy; let interactive work and training go first
log() { printf '\n== %s\n' "$*" >&2; }

# --- 1. build environment ---------------------------------------------------------
if [ ! -x "$venv/bin/python" ]; then
  log "Creating the build venv $venv"
  "${PYTHON:-python3}" -m venv "$venv"
fi
pip() { $nice "$venv/bin/python" -m pip --disable-pip-version-check "$@"; }
pip install --quiet --upgrade pip
if ! "$venv/bin/python" -c "import importlib.util as u; exit(u.find_spec('torch') is None)"; then
  if [ -n "${UPSCALER_TORCH:-}" ]; then
    log "Installing torch from $UPSCALER_TORCH"
    pip install --quiet "$UPSCALER_TORCH"
    # PyPI's torchvision matching this torch, without letting it pull a CUDA torch.
    # Its CUDA-linked ops are left out of the bundle (packaging/hooks/hook-torchvision.py).
    tv="$("$venv/bin/python" - <<'EOF'
from importlib.metadata import version
major, minor = version("torch").split("+")[0].split(".")[:2]
print(f"torchvision=={int(major) - 2}.{int(minor) + 15}.*")  # torch 2.13 <-> 0.28
EOF
)"
    pip install --quiet --no-deps "$tv"
  elif [ "$variant" = cpu ]; then
    log "Installing CPU-only torch + torchvision from $index"
    pip install --quiet torch torchvision --index-url "$index"
  else
    pip install --quiet torch torchvision
  fi
fi
log "Installing Upscaler's dependencies and PyInstaller"
# torch/torchvision are already satisfied, so pip keeps the CPU builds.
pip install --quiet "$here[package]"
"$venv/bin/python" -m pip list 2>/dev/null | grep -iE '^(torch|torchvision|pyqt5|pyinstaller|numpy|pillow) ' >&2

# --- 2. the one-folder app -----------------------------------------------------
log "PyInstaller ($variant)"
rm -rf "$dist/Upscaler"
UPSCALER_VARIANT="$variant" $nice "$venv/bin/pyinstaller" --noconfirm --clean \
  --log-level WARN --distpath "$dist" --workpath "$work" build.spec
app="$dist/Upscaler"

log "Checking that every bundled library resolves"
# Left to the system on purpose (the .deb's Depends/Recommends): OpenGL/EGL, libxcb
# and the xcb-* / xkbcommon libraries of Qt's xcb plugin (PyInstaller bundles them only
# when the build machine has them), drm, and the Wayland client libraries (needed only
# by Qt's Wayland plugins).
system_libs='lib(GL|EGL|OpenGL|GLX|GLdispatch|xcb(-[a-z-]+)?|xkbcommon(-x11)?|drm|wayland-[a-z]+)\.so'
libpath="$app/_internal:$app/_internal/torch/lib:$app/_internal/PyQt5/Qt5/lib"
missing="$(find "$app" -type f \( -name '*.so*' -o -perm -u+x \) -print0 |
  xargs -0 file -N | grep ELF | cut -d: -f1 |
  while read -r f; do LD_LIBRARY_PATH="$libpath" ldd "$f" 2>/dev/null |
    grep 'not found' | grep -Ev "$system_libs" | sed "s|^|$f: |"; done || true)"
if [ -n "$missing" ]; then
  echo "$missing" >&2
  echo "build_linux.sh: bundled libraries with unresolved dependencies (see above)" >&2
  exit 1
fi
if [ "$variant" = cpu ]; then
  cuda="$(find "$app" -type f \( -name '*.so*' -o -name '*.dll' \) | grep -iE \
    '/(lib)?(cuda|cudart|cudnn|cublas|cufft|curand|cusolver|cusparse|nccl|nvjpeg|nvrtc|nvjitlink|nvshmem|cupti|torch_cuda|c10_cuda)[^/]*$' ||
    true)"
  [ -z "$cuda" ] || { echo "CUDA files in a CPU build:" >&2; echo "$cuda" >&2; exit 1; }
fi

log "Self-test of the frozen CLI and GUI"
selftest_args=()
if ! ls "$app/_internal/weights/"*.safetensors >/dev/null 2>&1; then
  if [ -n "${UPSCALER_SELFTEST_WEIGHTS:-}" ]; then
    selftest_args=(--weights "$UPSCALER_SELFTEST_WEIGHTS")
  else
    echo "No weights bundled and UPSCALER_SELFTEST_WEIGHTS unset: expect a" \
      "'No trained weights found' failure below (the build itself is fine)." >&2
  fi
fi
status=0
(cd / && env -u PYTHONPATH "$app/upscaler-cli" --version) || status=1
(cd / && env -u PYTHONPATH "$app/upscaler-cli" --self-test "${selftest_args[@]}") || status=1
(cd / && env -u PYTHONPATH QT_QPA_PLATFORM=offscreen "$app/Upscaler" --self-test \
  "${selftest_args[@]}" 2>&1 | grep -E 'startup complete|Self-test') || status=1

[ "${UPSCALER_SKIP_ARCHIVES:-0}" = 1 ] && { du -sh "$app"; exit "$status"; }

# --- 3. .tar.gz ---------------------------------------------------------------
tarball="$dist/upscaler-$version-linux-x86_64-$variant.tar.gz"
log "Archive $tarball"
tar -C "$dist" -cf - Upscaler | $nice gzip -9 > "$tarball"

# --- 4. .deb ------------------------------------------------------------------
deb="$dist/upscaler_${version}_amd64.deb"
log "Debian package $deb"
root="$here/build/deb-$variant"
rm -rf "$root"
mkdir -p "$root/DEBIAN" "$root/opt" "$root/usr/bin" "$root/usr/share/applications" \
  "$root/usr/share/icons/hicolor/256x256/apps" "$root/usr/share/doc/upscaler"
cp -a "$app" "$root/opt/upscaler"
ln -s /opt/upscaler/upscaler-cli "$root/usr/bin/upscaler"
ln -s /opt/upscaler/Upscaler "$root/usr/bin/upscaler-gui"
install -m 644 resources/icon.png "$root/usr/share/icons/hicolor/256x256/apps/upscaler.png"
install -m 644 packaging/linux/upscaler.desktop "$root/usr/share/applications/"
printf "Upscaler %s (%s build), from commit %s.\n" \
  "$version" "$variant" "$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  > "$root/usr/share/doc/upscaler/README"
# glibc: the newest symbol version any bundled file needs (they come from the build
# machine).  Other system libraries: the ones PyInstaller leaves to the system
# (OpenGL/EGL, xcb, wayland, drm), found with ldd on the frozen app.
glibc="$(find "$app" -type f \( -name '*.so*' -o -perm -u+x \) -print0 |
  xargs -0 objdump -T 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' |
  sort -uV | tail -1)"
size_kb="$(du -sk "$root/opt" "$root/usr" | awk '{s += $1} END {print s}')"
sed -e "s/@VERSION@/$version/" -e "s/@GLIBC@/$glibc/" -e "s/@SIZE@/$size_kb/" \
  -e "s/@VARIANT@/$variant/" packaging/linux/control.in > "$root/DEBIAN/control"
$nice dpkg-deb --root-owner-group -Zxz -z6 --build "$root" "$deb" >&2
rm -rf "$root"

log "Sizes"
du -sh --apparent-size "$app" "$tarball" "$deb"
exit "$status"
