#!/usr/bin/env bash
# The Debian package as a new user meets it: build flowtap_VERSION_ARCH.deb, make a fresh Debian 12
# root with debootstrap (no Swift toolchain in it), `dpkg -i` the package there and let
# `apt-get install -f` bring its dependencies, then in a chroot:
#   - `flowtap analyze -r` on the bundled sample writes exactly the records the build tree's
#     flowtap writes (same bytes),
#   - `man flowtap` shows the page, bash completion completes subcommands and options,
#   - `systemd-analyze verify` accepts the unit files (systemd installed in the root for it).
# Needs root, debootstrap and a Debian mirror (the one apt uses here). Run by .ci/run.
#
#   scripts/test-package.sh                 # builds the package first
#   scripts/test-package.sh --no-build      # the package from the last install.sh build
set -euo pipefail
cd "$(dirname "$0")/.."
build_flags=()
[ "${1:-}" = "--no-build" ] && build_flags=(--no-build)
[ "$(id -u)" -eq 0 ] || { echo "test-package.sh: needs root (debootstrap and chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "test-package.sh: debootstrap is not installed" >&2; exit 1; }
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}

work=$(mktemp -d /tmp/flowtap-package-XXXXXX)
root="$work/root"
cleanup() {
    umount "$root/proc" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "test-package.sh: FAIL: $*" >&2; exit 1; }

scripts/build-deb.sh "${build_flags[@]}" -o "$work"
deb=$(ls "$work"/flowtap_*.deb)

echo "test-package.sh: debootstrap bookworm (minbase) from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" > "$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
mount -t proc proc "$root/proc"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

cp "$deb" "$root/tmp/"
cp samples/sample.pcap "$root/tmp/sample.pcap"
in_root sh -c '! command -v swift' || fail "the fresh root has a Swift toolchain; the test would prove nothing"
in_root apt-get update -qq
# dpkg alone stops at the missing dependencies; apt-get -f installs them and finishes the configuration.
in_root dpkg -i "/tmp/$(basename "$deb")" > "$work/dpkg.log" 2>&1 || true
DEBIAN_FRONTEND=noninteractive in_root apt-get install -f -y -qq > "$work/apt.log" 2>&1 || { cat "$work/apt.log"; fail "apt-get install -f"; }
in_root dpkg-query -W -f='${Status}\n' flowtap | grep -q "install ok installed" || { cat "$work/dpkg.log"; fail "flowtap is not installed"; }

in_root flowtap --version
in_root flowtap analyze -r /tmp/sample.pcap > "$work/chroot.jsonl" 2> "$work/chroot.err" || { cat "$work/chroot.err"; fail "flowtap analyze in the chroot"; }
swift build --product flowtap >/dev/null 2>&1 || true
host=$(swift build --show-bin-path)/flowtap
"$host" analyze -r samples/sample.pcap > "$work/host.jsonl" 2>/dev/null
records=$(wc -l < "$work/chroot.jsonl")
[ "$records" -gt 0 ] || fail "no records from the installed flowtap"
cmp -s "$work/chroot.jsonl" "$work/host.jsonl" || { diff "$work/host.jsonl" "$work/chroot.jsonl" | head; fail "the installed flowtap's records differ from the build tree's"; }
echo "test-package.sh: flowtap analyze in the chroot: $records records, identical to the build tree's"

DEBIAN_FRONTEND=noninteractive in_root apt-get install -y -qq --no-install-recommends man-db bash-completion > "$work/apt2.log" 2>&1 || { cat "$work/apt2.log"; fail "installing man-db and bash-completion"; }
in_root sh -c 'MANWIDTH=100 man -P cat flowtap 2>/dev/null' > "$work/man.txt"
grep -q "flowtap abstract" "$work/man.txt" && grep -q -- "--http" "$work/man.txt" || { head -20 "$work/man.txt"; fail "man flowtap"; }
echo "test-package.sh: man flowtap: $(wc -l < "$work/man.txt") lines"

# Completion as an interactive bash loads it: bash-completion finds the script by the command's name.
completion=$(in_root bash -c '
    . /usr/share/bash-completion/bash_completion
    _completion_loader flowtap
    COMP_WORDS=(flowtap ab); COMP_CWORD=1; COMP_LINE="flowtap ab"; COMP_POINT=${#COMP_LINE}
    $(complete -p flowtap | sed "s/.*-F \([^ ]*\) .*/\1/") flowtap ab flowtap
    printf "%s\n" "${COMPREPLY[@]}"
    COMP_WORDS=(flowtap analyze --ht); COMP_CWORD=2; COMP_LINE="flowtap analyze --ht"; COMP_POINT=${#COMP_LINE}
    $(complete -p flowtap | sed "s/.*-F \([^ ]*\) .*/\1/") flowtap --ht analyze
    printf "%s\n" "${COMPREPLY[@]}"')
echo "$completion" | grep -qx "abstract" || fail "bash completion of 'flowtap ab' gave: $completion"
echo "$completion" | grep -qx -- "--http" || fail "bash completion of 'flowtap analyze --ht' gave: $completion"
echo "test-package.sh: bash completion: 'flowtap ab' → abstract, 'flowtap analyze --ht' → --http"

# The units as systemd reads them, in the root where /usr/bin/flowtap exists (systemd is not running there:
# verify loads the files offline).
DEBIAN_FRONTEND=noninteractive in_root apt-get install -y -qq --no-install-recommends systemd procps > "$work/apt3.log" 2>&1 || { cat "$work/apt3.log"; fail "installing systemd"; }
for unit in "$root"/lib/systemd/system/flowtap-*; do
    name=$(basename "$unit")
    in_root systemd-analyze verify --man=no "/lib/systemd/system/$name" > "$work/verify.log" 2>&1 || { cat "$work/verify.log"; fail "systemd-analyze verify $name"; }
done
echo "test-package.sh: systemd-analyze verify: $(ls "$root"/lib/systemd/system/flowtap-* | wc -l) unit files valid"
echo "test-package.sh: $(basename "$deb") installs and runs on a fresh Debian 12 without Swift"
