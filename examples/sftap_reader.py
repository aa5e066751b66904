#!/usr/bin/env python3
"""Read an SF-TAP / FlowTap interface stream and print one line per event.

Usage:
  sftap_reader.py /tmp/sf-tap/tcp/http            # connect to a UNIX socket (text format)
  sftap_reader.py --binary /tmp/sf-tap/tcp/dns     # the 64-byte binary header format
  sftap_reader.py --file out/tcp/http              # a stream written by `flowtap abstract -o DIR`

Each printed line is JSON: the header fields, plus "body_len" for DATA. The
framing is documented in docs/abstract.md.
"""
import json
import socket
import struct
import sys

EVENTS = {0: "CREATED", 1: "DESTROYED", 2: "DATA"}
FROM = {0: "1", 1: "2", 3: "none"}
MATCH = {0: "up", 1: "down", 2: "none"}
REASON = {0: "NORMAL", 1: "RESET", 2: "TIMEOUT", 3: "COMPROMISED"}


class Stream:
    """Buffered reads of exact sizes or lines from a socket or file."""

    def __init__(self, read):
        self.read = read
        self.buffer = b""

    def fill(self):
        chunk = self.read(65536)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def line(self):
        while b"\n" not in self.buffer:
            if not self.fill():
                return None
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def exactly(self, n):
        while len(self.buffer) < n:
            if not self.fill():
                return None
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data


def text_events(stream):
    while True:
        line = stream.line()
        if line is None:
            return
        fields = dict(item.split("=", 1) for item in line.decode("ascii").split(",") if "=" in item)
        body = b""
        if fields.get("event") == "DATA":
            body = stream.exactly(int(fields["len"]))
            if body is None:
                raise SystemExit("stream ended inside a DATA body")
        yield fields, body


def binary_events(stream):
    while True:
        header = stream.exactly(64)
        if header is None:
            return
        a1, a2 = header[0:16], header[16:32]
        sec, usec = struct.unpack("<qq", header[32:48])
        port1, port2 = struct.unpack(">HH", header[48:52])
        event, frm, length = header[52], header[53], struct.unpack("<H", header[54:56])[0]
        hop, l3, l4, match, reason = header[56], header[57], header[58], header[59], header[60]
        vlan = struct.unpack(">H", header[61:63])[0]
        v6 = l3 == 41
        addr = lambda raw: socket.inet_ntop(socket.AF_INET6, raw) if v6 else socket.inet_ntop(socket.AF_INET, raw[:4])
        fields = {"ip1": addr(a1), "ip2": addr(a2), "port1": port1, "port2": port2, "vlan": -1 if vlan == 0xFFFF else vlan,
                  "hop": hop, "l3": "ipv6" if v6 else "ipv4", "l4": {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}.get(l4, str(l4)),
                  "event": EVENTS.get(event, str(event)), "time": sec + usec * 1e-6}
        body = b""
        if event == 2:
            fields.update({"from": FROM.get(frm, "none"), "match": MATCH.get(match, "none"), "len": length})
            body = stream.exactly(length)
            if body is None:
                raise SystemExit("stream ended inside a DATA body")
        if event == 1:
            fields["reason"] = REASON.get(reason, str(reason))
        yield fields, body


def main(argv):
    binary = "--binary" in argv
    from_file = "--file" in argv
    paths = [a for a in argv[1:] if not a.startswith("--")]
    if len(paths) != 1:
        raise SystemExit(__doc__)
    if from_file:
        handle = sys.stdin.buffer if paths[0] == "-" else open(paths[0], "rb")
        stream = Stream(handle.read)
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(paths[0])
        stream = Stream(sock.recv)
    for fields, body in (binary_events if binary else text_events)(stream):
        if fields.get("event") == "DATA":
            fields["body_len"] = len(body)
        print(json.dumps(fields), flush=True)


if __name__ == "__main__":
    main(sys.argv)
