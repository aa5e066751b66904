#!/bin/bash
# Builds a benchmark capture of real traffic from the corpus: nDPI's test captures with an Ethernet
# link (95 of them), merged in time order, repeated COPIES times (default 16) under other addresses
# (tcprewrite --seed N maps every IPv4 and IPv6 address to another, the same way within a copy), so
# the flows multiply without colliding. The traffic is nDPI's: small flows, many protocols, QUIC,
# fragments, one client talking to a few servers.
#
#   scripts/corpus-capture.sh OUT.pcap [COPIES]
#   flowtap-bench records -r OUT.pcap --runs 5
#
# Needs mergecap and capinfos (wireshark-common) and tcprewrite (tcpreplay).
set -euo pipefail
out=${1:?usage: corpus-capture.sh OUT.pcap [COPIES]}
copies=${2:-16}
here=$(cd "$(dirname "$0")/.." && pwd)
corpus=${FLOWTAP_CORPUS:-$here/../shared/corpus}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for tool in mergecap capinfos tcprewrite; do
    command -v "$tool" >/dev/null || { echo "corpus-capture.sh: $tool is missing (apt-get install wireshark-common tcpreplay)" >&2; exit 1; }
done
inputs=()
for f in "$corpus"/ndpi-4.2/pcap/*.pcap*; do
    [ "$(capinfos -E -T -m "$f" 2>/dev/null | tail -n 1 | awk -F, '{print $NF}')" = ether ] && inputs+=("$f")
done
[ ${#inputs[@]} -gt 0 ] || { echo "corpus-capture.sh: no Ethernet captures under $corpus/ndpi-4.2/pcap" >&2; exit 1; }
mergecap -F pcap -w "$work/merged.pcap" "${inputs[@]}"
for s in $(seq 1 "$copies"); do
    # --fixcsum warns about packets it cannot checksum (nDPI's malformed ones) and leaves them as they are.
    tcprewrite --seed="$s" --fixcsum --infile="$work/merged.pcap" --outfile="$work/copy$s.pcap" 2>/dev/null
done
mergecap -F pcap -w "$out" "$work"/copy*.pcap
echo "$out: ${#inputs[@]} captures, $copies copies, $(capinfos -c -M "$out" | awk '/Number of packets/ {print $NF}') packets"
