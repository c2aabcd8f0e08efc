#!/usr/bin/env bash
# Installs a built .deb, runs both launchers' self-tests, purges it and lists every
# file that differs from before (should be none).  Needs root; changes the system.
#   sudo packaging/linux/check_deb.sh dist/upscaler_0.1.0_amd64.deb [WEIGHTS]
set -euo pipefail
deb="$(readlink -f "$1")"
weights=()
[ -z "${2:-}" ] || weights=(--weights "$(readlink -f "$2")")
snap() {  # the system's files outside /proc, /sys, /dev, /run, /tmp, /work, /home
  find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \
    -o -path /work -o -path /home -o -path /root -o -path /var/log -o -path /var/cache \
    \) -prune -o -print 2>/dev/null | sort
}
before="$(mktemp)"; after="$(mktemp)"; home="$(mktemp -d)"
snap > "$before"
dpkg -i "$deb"
echo "--- installed files:"; dpkg -L upscaler | grep -v '^/opt/upscaler/_internal/'
ls -l /usr/bin/upscaler /usr/bin/upscaler-gui
(cd / && HOME="$home" upscaler --version && HOME="$home" upscaler --self-test "${weights[@]}") || true
(cd / && HOME="$home" QT_QPA_PLATFORM=offscreen upscaler-gui --self-test "${weights[@]}" 2>&1 |
  grep -E 'startup complete|Self-test') || true
dpkg --purge upscaler
snap > "$after"
echo "--- left behind after dpkg --purge (expected: nothing):"
diff "$before" "$after" && echo "(nothing)"
rm -rf "$before" "$after" "$home"
