#!/usr/bin/env bash
# Builds a release flowtap with the Swift runtime and Foundation linked in (--static-swift-stdlib),
# so it runs on machines without a Swift toolchain, and installs it under a prefix with its man page,
# bash, zsh and fish completions, the example configurations and the systemd unit examples.
#
#   scripts/install.sh                                   # into /usr/local (uses sudo when not root)
#   scripts/install.sh --prefix "$HOME/.local"           # no root needed
#   DESTDIR=/tmp/stage scripts/install.sh --prefix /usr  # into a staging root (build-deb.sh does this)
#   scripts/install.sh --no-build --prefix /opt/flowtap  # install what the last build made
#
# What it installs (PREFIX/...):
#   bin/flowtap
#   share/man/man1/flowtap.1
#   share/bash-completion/completions/flowtap, share/zsh/site-functions/_flowtap,
#   share/fish/vendor_completions.d/flowtap.fish
#   share/doc/flowtap/  README.md, CHANGELOG.md, examples/, systemd/ (unit examples)
# The build takes a few minutes the first time (release, every module); later ones are incremental.
# It needs what scripts/install-deps.sh installs (libpcap, Vectorscan, zlib and hiredis headers).
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr/local
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
destdir=${DESTDIR:-}
scratch=.build-install
build_flags=(-c release --static-swift-stdlib --product flowtap --scratch-path "$scratch")

if [ "$build" = 1 ]; then
    echo "install.sh: building a release flowtap with the Swift runtime linked in ($scratch)"
    swift build "${build_flags[@]}"
fi
binary="$(swift build "${build_flags[@]}" --show-bin-path)/flowtap"
[ -x "$binary" ] || { echo "install.sh: $binary is not built; run without --no-build" >&2; exit 1; }
# The point of the static build: nothing from the toolchain's folder may be needed at run time.
if ldd "$binary" | grep -q 'libswift\|libFoundation\|libdispatch'; then
    echo "install.sh: $binary still links the Swift runtime dynamically:" >&2
    ldd "$binary" | grep 'libswift\|libFoundation\|libdispatch' >&2
    exit 1
fi

root="$destdir$prefix"
sudo=""
if [ -z "$destdir" ] && ! mkdir -p "$root/bin" 2>/dev/null; then sudo="sudo"; fi

completions=$(mktemp -d)
trap 'rm -rf "$completions"' EXIT
"$binary" --generate-completion-script bash > "$completions/flowtap"
"$binary" --generate-completion-script zsh > "$completions/_flowtap"
"$binary" --generate-completion-script fish > "$completions/flowtap.fish"

$sudo install -Dm755 "$binary" "$root/bin/flowtap"
$sudo install -Dm644 docs/man/flowtap.1 "$root/share/man/man1/flowtap.1"
$sudo install -Dm644 "$completions/flowtap" "$root/share/bash-completion/completions/flowtap"
$sudo install -Dm644 "$completions/_flowtap" "$root/share/zsh/site-functions/_flowtap"
$sudo install -Dm644 "$completions/flowtap.fish" "$root/share/fish/vendor_completions.d/flowtap.fish"
for file in README.md CHANGELOG.md; do $sudo install -Dm644 "$file" "$root/share/doc/flowtap/$file"; done
for file in examples/*.yaml; do $sudo install -Dm644 "$file" "$root/share/doc/flowtap/examples/$(basename "$file")"; done
# The unit examples name the binary where this prefix puts it.
for file in packaging/systemd/*; do
    sed "s#/usr/bin/flowtap#$prefix/bin/flowtap#g" "$file" > "$completions/$(basename "$file")"
    $sudo install -Dm644 "$completions/$(basename "$file")" "$root/share/doc/flowtap/systemd/$(basename "$file")"
done
echo "install.sh: installed flowtap $("$binary" --version) into $root (bin/flowtap, man page, completions, examples, systemd units)"
case ":$PATH:" in
    *":$prefix/bin:"*) ;;
    *) [ -z "$destdir" ] && echo "install.sh: $prefix/bin is not on PATH; add it, or run $prefix/bin/flowtap" ;;
esac
