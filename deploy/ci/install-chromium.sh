#!/usr/bin/env bash
# Install Debian's Chromium (and a CJK font, so Japanese client names render in screenshots)
# for the dashboard browser tests, idempotently. Debian packages only: no browser downloads from
# anywhere else (no npm/playwright fetch).
# Usage: deploy/ci/install-chromium.sh   (as root, or with sudo available)
set -euo pipefail

PACKAGES=(chromium fonts-noto-cjk)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ] && command -v chromium >/dev/null 2>&1; then
    echo "chromium ready: $(chromium --version 2>/dev/null | head -n1)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "error: missing ${missing[*]} and not root (no sudo); as root run:" >&2
        echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "chromium ready: $(chromium --version 2>/dev/null | head -n1)"
