#!/usr/bin/env bash
# A tap topology for `flowtap incubate` tests and docs/incubator.md's example, L2 only (no addresses):
#
#   NAME-s (sender)           NAME-i (incubator)                          NAME-c0 … NAME-cK (cells)
#   NAMEs0 ──── veth ──── NAMEi0   (tap: incubate -i NAMEi0; inline: --bridge NAMEi0,NAMEi1)
#                             NAMEi1 ─────────── veth ─────────── NAMEr0   NAME-r (the far side of a bridge)
#                             NAMEx0 … NAMExK ─────────── veth ─────────── NAMEc0 … NAMEcK
#
# IPv6 is off in every namespace so the links carry only the replayed frames (no neighbour discovery).
# Usage: scripts/incubate-netns.sh up NAME CELLS | down NAME CELLS     (NAME: at most 8 letters or digits)
set -euo pipefail
action=${1:?up or down}
name=${2:?a short name}
cells=${3:?the number of cells}
all=("$name-s" "$name-i" "$name-r")
for ((k = 0; k < cells; k++)); do all+=("$name-c$k"); done
case "$action" in
up)
    for ns in "${all[@]}"; do
        ip netns add "$ns"
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        ip -n "$ns" link set lo up
    done
    # A large MTU: captured frames may carry VLAN tags (1,518 bytes) or come from jumbo links.
    ip link add "${name}s0" mtu 9000 type veth peer name "${name}i0" mtu 9000
    ip link set "${name}s0" netns "$name-s"
    ip link set "${name}i0" netns "$name-i"
    ip -n "$name-s" link set "${name}s0" up
    ip -n "$name-i" link set "${name}i0" up
    ip link add "${name}i1" mtu 9000 type veth peer name "${name}r0" mtu 9000
    ip link set "${name}i1" netns "$name-i"
    ip link set "${name}r0" netns "$name-r"
    ip -n "$name-i" link set "${name}i1" up
    ip -n "$name-r" link set "${name}r0" up
    for ((k = 0; k < cells; k++)); do
        ip link add "${name}x$k" mtu 9000 type veth peer name "${name}c$k" mtu 9000
        ip link set "${name}x$k" netns "$name-i"
        ip link set "${name}c$k" netns "$name-c$k"
        ip -n "$name-i" link set "${name}x$k" up
        ip -n "$name-c$k" link set "${name}c$k" up
    done
    ;;
down)
    for ns in "${all[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    ;;
*)
    echo "usage: $0 up|down NAME CELLS" >&2
    exit 2
    ;;
esac
