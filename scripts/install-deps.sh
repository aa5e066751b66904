#!/usr/bin/env bash
# Installs the Debian packages FlowTap builds against and the tools its tests
# use as oracles. Safe to run again: it installs only what is missing.
set -euo pipefail

build_deps=(libpcap-dev libvectorscan-dev zlib1g-dev libhiredis-dev pkg-config)
# Oracles for differential tests and peers for benchmarks; tests skip cleanly without them (and fail
# under CI). prometheus brings promtool (checks /metrics), chromium loads the dashboard and the report,
# debootstrap makes the fresh Debian root scripts/test-package.sh installs the .deb into.
oracle_deps=(tcpdump tshark tcpflow libndpi-bin softflowd nfdump fprobe pmacct tcpreplay socat redis-server time python3 python3-pip iproute2 curl openssl python3-jsonschema
             prometheus chromium debootstrap binutils)
# Python oracles from PyPI: Corelight's Community ID reference implementation.
python_deps=(communityid)

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

missing=()
for pkg in "${build_deps[@]}" "${oracle_deps[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for module in "${python_deps[@]}"; do
    if ! python3 -c "import $module" 2>/dev/null; then
        echo "install-deps: installing the Python package $module"
        # Debian's python3 is externally managed (PEP 668): the package goes beside it, for the tests only.
        $sudo python3 -m pip install --quiet --break-system-packages "$module" 2>/dev/null \
            || $sudo python3 -m pip install --quiet "$module"
    fi
done
if [ ${#missing[@]} -eq 0 ]; then echo "install-deps: everything is installed"; fi
if ! command -v swift >/dev/null 2>&1; then
    echo "install-deps: no Swift toolchain on PATH; FlowTap needs Swift 6.0 or newer (https://www.swift.org/install/linux/)" >&2
    exit 1
fi
