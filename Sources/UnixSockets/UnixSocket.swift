#if canImport(Glibc)
import Glibc
#endif

/// A bound, listening UNIX stream socket and the file it created.
struct Listener {
    var fd: Int32
    /// The path as given (what `bind` used).
    let path: String
    /// The same file from the root, for `unlink` even after a `chdir`.
    let absolutePath: String
    /// Identity of the socket file bind made, so `close` never unlinks a
    /// socket another process put there since.
    let device: UInt64
    let inode: UInt64
}

/// Thin wrappers over the socket system calls, each failure an `SocketError`.
enum UnixSocket {
    /// `sun_path` is 108 bytes including the terminating NUL.
    static let maximumPathBytes = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    static let streamFlags = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
    static let acceptFlags = Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
    static let noSignal = Int32(MSG_NOSIGNAL)
    static let dontWait = Int32(MSG_DONTWAIT)

    // MARK: - Set-up (cold)

    /// Checks the path fits `sockaddr_un` before anything touches the disk.
    static func validate(_ path: String) throws(SocketError) {
        if path.isEmpty || path.hasSuffix("/") {
            throw SocketError(code: .invalidPath, path: path, message: "not a socket path: name a file, e.g. HOME/tcp/http")
        }
        if path.utf8.contains(0) {
            throw SocketError(code: .invalidPath, path: path, message: "the path holds a NUL byte")
        }
        let length = path.utf8.count
        if length > maximumPathBytes {
            throw SocketError(
                code: .pathTooLong, path: path,
                message: "path is \(length) bytes, longer than the \(maximumPathBytes) a UNIX socket address holds: choose a shorter home")
        }
    }

    static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            var i = 0
            for byte in path.utf8 where i < raw.count - 1 {
                raw[i] = byte
                i += 1
            }
            raw[i] = 0
        }
        return address
    }

    /// Calls `body` with `path` as a `sockaddr` and its length, for bind(2) and connect(2).
    static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var address = address(path)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// `mkdir -p` of the socket's parent directories, mode 0770 (less the
    /// process umask), appending those it made to `created`.
    static func makeParents(of path: String, created: inout [String]) throws(SocketError) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).dropLast()
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in parts {
            prefix += part
            defer { prefix += "/" }
            if part == "." || part == ".." { continue }
            if mkdir(prefix, 0o770) == 0 {
                created.append(absolute(prefix))
                continue
            }
            let failure = errno
            var info = stat()
            if stat(prefix, &info) == 0 {
                if info.st_mode & S_IFMT == S_IFDIR { continue }
                throw SocketError(code: .notADirectory, path: prefix,
                                     message: "exists and is not a directory: remove it or choose another home")
            }
            throw SocketError.system("mkdir", path: prefix, errno: failure)
        }
    }

    /// Clears the way for `bind`: removes a socket file nobody listens on,
    /// refuses a live socket or any other kind of file.
    static func removeStale(_ path: String) throws(SocketError) {
        var info = stat()
        if lstat(path, &info) != 0 {
            if errno == ENOENT { return }
            throw SocketError.system("lstat", path: path, errno: errno)
        }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw SocketError(code: .notASocket, path: path,
                                 message: "exists and is not a socket; refusing to remove it: move it away or choose another home")
        }
        if isListening(path) {
            throw SocketError(code: .inUse, path: path,
                                 message: "another process is listening on this socket (a second flowtap?): stop it or choose another home")
        }
        if unlink(path) != 0, errno != ENOENT {
            throw SocketError.system("unlink", path: path, errno: errno,
                                        advice: "cannot remove the stale socket: remove it by hand or run as its owner")
        }
    }

    /// A non-blocking connect: refused means stale; accepted or a full
    /// backlog (EAGAIN) means someone is listening.
    static func isListening(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, streamFlags, 0)
        if fd < 0 { return false }
        defer { Glibc.close(fd) }
        let result = withAddress(path) { connect(fd, $0, $1) }
        return result == 0 || errno == EAGAIN || errno == EINPROGRESS
    }

    /// socket, bind, chmod, listen; the socket is non-blocking and close-on-exec.
    ///
    /// SF-TAP calls `umask(0007)` before bind. umask is per process and would
    /// race with other threads creating files, so bind under whatever umask
    /// is set and then chmod to `mode` (0770: owner and group may connect,
    /// others not), which gives the file the same mode.
    static func listen(path: String, backlog: Int32, mode: mode_t) throws(SocketError) -> Listener {
        let fd = socket(AF_UNIX, streamFlags, 0)
        if fd < 0 { throw SocketError.system("socket", path: path, errno: errno) }
        let bound = withAddress(path) { bind(fd, $0, $1) }
        if bound != 0 {
            let failure = errno
            Glibc.close(fd)
            throw SocketError.system("bind", path: path, errno: failure)
        }
        var info = stat()
        if chmod(path, mode) != 0 || lstat(path, &info) != 0 {
            let failure = errno
            Glibc.close(fd)
            unlink(path)
            throw SocketError.system("chmod", path: path, errno: failure)
        }
        if Glibc.listen(fd, backlog) != 0 {
            let failure = errno
            Glibc.close(fd)
            unlink(path)
            throw SocketError.system("listen", path: path, errno: failure)
        }
        return Listener(fd: fd, path: path, absolutePath: absolute(path),
                        device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// Unlinks the listener's file if it is still the socket we bound.
    static func unlinkIfOurs(_ listener: Listener) {
        var info = stat()
        guard lstat(listener.absolutePath, &info) == 0,
              info.st_mode & S_IFMT == S_IFSOCK,
              UInt64(info.st_dev) == listener.device, UInt64(info.st_ino) == listener.inode
        else { return }
        unlink(listener.absolutePath)
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        guard let cwd = getcwd(nil, 0) else { return path }
        defer { free(cwd) }
        let directory = String(cString: cwd)
        return directory == "/" ? "/" + path : directory + "/" + path
    }

    // MARK: - Per event (hot)

    /// sendmsg with MSG_NOSIGNAL (a vanished reader yields EPIPE, not SIGPIPE).
    /// Returns the bytes written, or `-errno`; retries EINTR.
    @inline(__always)
    static func send(_ fd: Int32, _ iov: UnsafeMutablePointer<iovec>, _ count: Int) -> Int {
        var message = msghdr()
        message.msg_iov = iov
        message.msg_iovlen = count
        while true {
            let n = sendmsg(fd, &message, noSignal)
            if n >= 0 { return n }
            let failure = errno
            if failure != EINTR { return -Int(failure) }
        }
    }

    /// recv without blocking. Returns the bytes read (0 at end of stream), or `-errno`; retries EINTR.
    @inline(__always)
    static func receive(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ capacity: Int) -> Int {
        while true {
            let n = recv(fd, buffer, capacity, dontWait)
            if n >= 0 { return n }
            let failure = errno
            if failure != EINTR { return -Int(failure) }
        }
    }

    private typealias Accept4 = @convention(c) (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32) -> Int32

    /// Glibc's module map hides accept4 (it is a GNU extension), so look it up once.
    private static let accept4: Accept4? = dlsym(nil, "accept4").map { unsafeBitCast($0, to: Accept4.self) }

    /// Accepts a connection, non-blocking and close-on-exec. Returns the fd, or `-errno`.
    static func accept(_ fd: Int32) -> Int32 {
        while true {
            let client: Int32
            if let accept4 {
                client = accept4(fd, nil, nil, acceptFlags)
            } else {
                client = Glibc.accept(fd, nil, nil)
                if client >= 0 {
                    _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
                    _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                }
            }
            if client >= 0 { return client }
            let failure = errno
            if failure != EINTR { return -failure }
        }
    }

    static func setSendBuffer(_ fd: Int32, bytes: Int) {
        var value = Int32(clamping: bytes)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &value, socklen_t(MemoryLayout<Int32>.size))
    }
}
