#!/usr/bin/env bash
# Install Debian's Dovecot IMAP server for the `shinrai connect` integration tests and bench,
# idempotently. The tests start their own private instance (temporary config, users and
# Maildirs, loopback only); the package's system service is not started or used.
# Usage: deploy/ci/install-dovecot.sh   (as root, or with sudo available)
set -euo pipefail

PACKAGES=(dovecot-imapd)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ] && [ -x /usr/sbin/dovecot ]; then
    echo "dovecot ready: $(/usr/sbin/dovecot --version 2>/dev/null | head -n1)"
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
# policy-rc.d or not, the tests never use the system service: stop it if the package started it.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet dovecot 2>/dev/null; then
    $SUDO systemctl stop dovecot || true
fi
echo "dovecot ready: $(/usr/sbin/dovecot --version 2>/dev/null | head -n1)"
