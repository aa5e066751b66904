#if canImport(Glibc)
import Glibc
#endif

/// The reading end of an interface socket: what an analyzer connects with.
public enum SocketClient {
    /// Connects to the UNIX stream socket at `path` (blocking, close-on-exec). Returns the descriptor.
    ///
    /// A `connect` failure with errno ENOENT or ECONNREFUSED means nothing serves
    /// the path yet (or any more): callers may retry (`isNotServedYet`).
    public static func connect(_ path: String) throws(SocketError) -> Int32 {
        try UnixSocket.validate(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw SocketError.system("socket", path: path, errno: errno) }
        let result = UnixSocket.withAddress(path) { Glibc.connect(fd, $0, $1) }
        if result == 0 { return fd }
        let failure = errno
        Glibc.close(fd)
        switch failure {
        case ENOENT:
            throw SocketError.system("connect", path: path, errno: failure,
                                        advice: "no socket here yet: start flowtap abstract (or SF-TAP) with this home and interface, or check the path")
        case ECONNREFUSED:
            throw SocketError.system("connect", path: path, errno: failure,
                                        advice: "nothing listens on this socket (a stale file?): start flowtap abstract with this home")
        default:
            throw SocketError.system("connect", path: path, errno: failure)
        }
    }

    /// Whether a `connect` failure may go away by itself (the server is not up yet).
    public static func isNotServedYet(_ error: SocketError) -> Bool {
        error.errno == ENOENT || error.errno == ECONNREFUSED
    }
}
