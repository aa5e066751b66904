#!/usr/bin/env python3
"""Receives UDP datagrams on every ADDRESS:PORT given ([IPv6]:PORT for IPv6) and writes one line per
datagram to standard output: the local endpoint, the sender's address and port, and the payload in hex.
Runs until SIGTERM or SIGINT. A test helper: the collector side of `flowtap forward` tests."""
import selectors
import signal
import socket
import sys


def parse(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def main():
    selector = selectors.DefaultSelector()
    for text in sys.argv[1:]:
        host, port = parse(text)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        s.bind((host, port))
        selector.register(s, selectors.EVENT_READ, text)
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    signal.signal(signal.SIGINT, lambda *_: running.__setitem__(0, False))
    print("ready", flush=True)
    out = sys.stdout
    while running[0]:
        for key, _ in selector.select(timeout=0.1):
            while True:
                try:
                    data, sender = key.fileobj.recvfrom(65535, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                out.write(f"{key.data} {sender[0]} {sender[1]} {data.hex()}\n")
        out.flush()


if __name__ == "__main__":
    main()
