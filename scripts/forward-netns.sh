#!/usr/bin/env bash
# A forwarding topology in three network namespaces, for `flowtap forward` tests, benchmarks and
# docs/forward.md's worked example:
#
#   NAME-e (exporters)             NAME-f (forwarder)                 NAME-c (collectors)
#   NAMEe0 10.1.0.1/24  ─── veth ─── NAMEf0 10.1.0.254/24  NAMEf1 10.2.0.254/24 ─── veth ─── NAMEc0 10.2.0.2/24, 10.2.0.3/24
#          fd00:1::1/64                    fd00:1::fe/64          fd00:2::fe/64                      fd00:2::2/64, fd00:2::3/64
#
# Exporters are any addresses in 10.1.0.0/24 and fd00:1::/64 sending to the forwarder (tcpreplay on
# NAMEe0 with the MACs below needs no address at all); the collectors route back through the forwarder
# (which does not route: ip_forward stays 0) so a datagram keeping its exporter's source is accepted.
#
# Usage: scripts/forward-netns.sh up NAME | down NAME     (NAME: at most 8 letters or digits)
set -euo pipefail
action=${1:?up or down}
name=${2:?a short name, e.g. fwd}
e="$name-e" f="$name-f" c="$name-c"
case "$action" in
up)
    ip netns add "$e"
    ip netns add "$f"
    ip netns add "$c"
    ip link add "${name}e0" address 02:00:00:01:00:01 type veth peer name "${name}f0" address 02:00:00:01:00:fe
    ip link add "${name}f1" address 02:00:00:02:00:fe type veth peer name "${name}c0" address 02:00:00:02:00:02
    ip link set "${name}e0" netns "$e"
    ip link set "${name}f0" netns "$f"
    ip link set "${name}f1" netns "$f"
    ip link set "${name}c0" netns "$c"
    ip -n "$e" addr add 10.1.0.1/24 dev "${name}e0"
    ip -n "$e" addr add fd00:1::1/64 dev "${name}e0" nodad
    ip -n "$f" addr add 10.1.0.254/24 dev "${name}f0"
    ip -n "$f" addr add fd00:1::fe/64 dev "${name}f0" nodad
    ip -n "$f" addr add 10.2.0.254/24 dev "${name}f1"
    ip -n "$f" addr add fd00:2::fe/64 dev "${name}f1" nodad
    ip -n "$c" addr add 10.2.0.2/24 dev "${name}c0"
    ip -n "$c" addr add 10.2.0.3/24 dev "${name}c0"
    ip -n "$c" addr add fd00:2::2/64 dev "${name}c0" nodad
    ip -n "$c" addr add fd00:2::3/64 dev "${name}c0" nodad
    for ns in "$e" "$f" "$c"; do ip -n "$ns" link set lo up; done
    ip -n "$e" link set "${name}e0" up
    ip -n "$f" link set "${name}f0" up
    ip -n "$f" link set "${name}f1" up
    ip -n "$c" link set "${name}c0" up
    ip -n "$c" route add default via 10.2.0.254
    ip -n "$c" -6 route add default via fd00:2::fe
    # Static neighbours: the first datagrams need no ARP or neighbour discovery to wait on.
    ip -n "$f" neigh replace 10.2.0.2 lladdr 02:00:00:02:00:02 dev "${name}f1"
    ip -n "$f" neigh replace 10.2.0.3 lladdr 02:00:00:02:00:02 dev "${name}f1"
    ip -n "$f" neigh replace fd00:2::2 lladdr 02:00:00:02:00:02 dev "${name}f1"
    ip -n "$f" neigh replace fd00:2::3 lladdr 02:00:00:02:00:02 dev "${name}f1"
    ;;
down)
    for ns in "$e" "$f" "$c"; do ip netns del "$ns" 2>/dev/null || true; done
    ;;
*)
    echo "usage: $0 up|down NAME" >&2
    exit 2
    ;;
esac
