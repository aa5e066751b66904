"""A small proxy for the tunnel tests: HTTP CONNECT, SOCKS4/4a and SOCKS5 (RFC 1928, with RFC 1929
username/password when the client offers it), every target sent to 127.0.0.1 on the port asked for.
Usage: tunnel-proxy.py PORT   (prints "ready" once it listens)."""
import socket
import socketserver
import struct
import sys
import threading


def relay(a, b):
    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
    t = threading.Thread(target=pump, args=(b, a), daemon=True)
    t.start()
    pump(a, b)
    t.join(10)


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def read_until_nul(sock):
    data = b""
    while not data.endswith(b"\0"):
        data += read_exact(sock, 1)
    return data


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        c = self.request
        first = c.recv(1, socket.MSG_PEEK)
        if first == b"\x04":
            head = read_exact(c, 8)
            port = struct.unpack("!H", head[2:4])[0]
            read_until_nul(c)
            if head[4:7] == b"\0\0\0" and head[7] != 0:
                read_until_nul(c)
            upstream = socket.create_connection(("127.0.0.1", port))
            c.sendall(b"\x00\x5a" + head[2:8])
        elif first == b"\x05":
            n = read_exact(c, 2)[1]
            methods = read_exact(c, n)
            if 2 in methods:
                c.sendall(b"\x05\x02")
                ver, ulen = read_exact(c, 2)
                read_exact(c, ulen)
                plen = read_exact(c, 1)[0]
                read_exact(c, plen)
                c.sendall(b"\x01\x00")
            else:
                c.sendall(b"\x05\x00")
            head = read_exact(c, 4)
            atyp = head[3]
            if atyp == 1:
                read_exact(c, 4)
            elif atyp == 3:
                read_exact(c, read_exact(c, 1)[0])
            else:
                read_exact(c, 16)
            port = struct.unpack("!H", read_exact(c, 2))[0]
            upstream = socket.create_connection(("127.0.0.1", port))
            c.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01" + struct.pack("!H", port))
        else:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = c.recv(4096)
                if not chunk:
                    return
                request += chunk
            target = request.split(b" ")[1].decode()
            port = int(target.rsplit(":", 1)[1])
            upstream = socket.create_connection(("127.0.0.1", port))
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        relay(c, upstream)
        upstream.close()


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


server = Server(("127.0.0.1", int(sys.argv[1])), Handler)
print("ready", flush=True)
server.serve_forever()
