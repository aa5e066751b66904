#!/usr/bin/env bash
# Builds flowtap_VERSION_ARCH.deb: the static-runtime binary from install.sh under /usr, the man
# page, completions, examples as /etc/flowtap conffiles and the systemd units (installed, not
# enabled). Depends: is worked out from what the binary links (ldd → dpkg -S), each at least the
# version it was built against, so the package installs on Debian 12 without a Swift toolchain.
#
#   scripts/build-deb.sh                 # builds, writes ./flowtap_0.2.0_amd64.deb
#   scripts/build-deb.sh --no-build -o /tmp/packages
set -euo pipefail
cd "$(dirname "$0")/.."

output=.
install_flags=()
while [ $# -gt 0 ]; do
    case "$1" in
        -o|--output) output=${2:?-o needs a directory}; shift 2 ;;
        --no-build) install_flags+=(--no-build); shift ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-deb.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for tool in dpkg-deb dpkg-query ldd readelf; do
    command -v "$tool" >/dev/null || { echo "build-deb.sh: $tool is needed (Debian's dpkg and libc-bin)" >&2; exit 1; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
DESTDIR="$stage" scripts/install.sh --prefix /usr "${install_flags[@]}"
binary="$stage/usr/bin/flowtap"
version=$("$binary" --version)
arch=$(dpkg --print-architecture)

# The systemd units where systemd looks for them, the examples as the configuration they name.
install -Dm644 -t "$stage/lib/systemd/system" packaging/systemd/*
install -Dm644 examples/flowtap.yaml "$stage/etc/flowtap/abstract.yaml"
install -Dm644 examples/forward.yaml "$stage/etc/flowtap/forward.yaml"
install -Dm644 examples/incubator.yaml "$stage/etc/flowtap/incubator.yaml"

# Depends: the package of every library the binary names (its NEEDED entries; theirs come with them),
# at least at the version built against.
needed=$(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
depends=()
while read -r path; do
    package=$(dpkg-query -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1) || true
    if [ -z "$package" ]; then
        # Merged /usr: the loader reports /lib/... for files dpkg knows as /usr/lib/... (or the reverse).
        alternative=${path#/usr}
        [ "$alternative" = "$path" ] && alternative="/usr$path"
        package=$(dpkg-query -S "$alternative" 2>/dev/null | head -n 1 | cut -d: -f1) || true
    fi
    [ -n "$package" ] || { echo "build-deb.sh: no Debian package owns $path; the .deb would not run without it" >&2; exit 1; }
    upstream=$(dpkg-query -W -f='${Version}' "$package" | sed -e 's/-[^-]*$//')
    depends+=("$package (>= $upstream)")
done < <(ldd "$binary" | awk -v needed="$needed" 'BEGIN { n = split(needed, names, "\n"); for (i = 1; i <= n; i++) want[names[i]] = 1 }
                              ($1 in want) && /=> \// { print $3 }' | sort -u)
depends_line=$(printf '%s\n' "${depends[@]}" | sort -u | paste -sd, - | sed 's/,/, /g')

mkdir -p "$stage/DEBIAN"
find "$stage/etc" -type f | sed "s#^$stage##" > "$stage/DEBIAN/conffiles"
cat > "$stage/DEBIAN/control" <<CONTROL
Package: flowtap
Version: $version
Architecture: $arch
Maintainer: FlowTap developers <flowtap@users.noreply.github.com>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: $depends_line
Suggests: man-db, bash-completion, prometheus
Section: net
Priority: optional
Description: programmable network traffic analysis (SF-TAP flow abstraction)
 FlowTap captures packets, rebuilds flows (IP defragmentation, TCP reassembly),
 classifies each flow's application protocol and serves every protocol class as
 a stream on its own UNIX socket (SF-TAP). It also analyzes HTTP, DNS, TLS and
 QUIC to JSON records, writes per-flow records, exports and collects NetFlow,
 IPFIX and sFlow, forwards logs and flow exports by rules, splits traffic over
 analysis cells, and serves Prometheus metrics and a live dashboard.
CONTROL
mkdir -p "$output"
deb="$output/flowtap_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "build-deb.sh: $deb ($(du -h "$deb" | cut -f1)); Depends: $depends_line"
