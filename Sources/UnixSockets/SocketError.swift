#if canImport(Glibc)
import Glibc
#endif

/// A socket interface that could not be set up, naming the path, the system
/// call and its errno, and saying what to do. Cold path only: built when
/// `addOutput`/`addInput`/`poll` fail, never per event.
public struct SocketError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, for code that wants to branch on it.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case invalidPath, pathTooLong, notASocket, notADirectory, inUse, pathConflict, systemCall, closed
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Empty, ends in `/`, or holds a NUL byte.
        public static let invalidPath = Code(.invalidPath)
        /// Longer than the 107 bytes `sockaddr_un.sun_path` holds.
        public static let pathTooLong = Code(.pathTooLong)
        /// Something other than a socket sits at the path; it is left alone.
        public static let notASocket = Code(.notASocket)
        /// A parent of the path exists and is not a directory.
        public static let notADirectory = Code(.notADirectory)
        /// Another process is listening on the socket at the path.
        public static let inUse = Code(.inUse)
        /// The path is already an interface of the other kind (input vs output).
        public static let pathConflict = Code(.pathConflict)
        /// A system call failed; `syscall` and `errno` say which and why.
        public static let systemCall = Code(.systemCall)
        /// The server was closed.
        public static let closed = Code(.closed)

        public var description: String { "\(base)" }
    }

    public var code: Code
    /// The socket or directory path concerned.
    public var path: String
    /// The failing system call, e.g. "bind", when there is one.
    public var syscall: String?
    /// Its errno, when there is one.
    public var errno: Int32?
    /// What happened and what to do about it.
    public var message: String

    public init(code: Code, path: String, syscall: String? = nil, errno: Int32? = nil, message: String) {
        self.code = code
        self.path = path
        self.syscall = syscall
        self.errno = errno
        self.message = message
    }

    /// One line: `/tmp/sf-tap/tcp/http: bind(2): Permission denied (errno 13): permission denied: run as ...`.
    public var description: String {
        var text = path + ": "
        if let syscall {
            text += syscall + "(2)"
            if let errno { text += ": " + String(cString: strerror(errno)) + " (errno \(errno))" }
            text += ": "
        }
        return text + message
    }

    /// A failed system call, with advice chosen from its errno.
    static func system(_ syscall: String, path: String, errno code: Int32, advice: String? = nil) -> SocketError {
        SocketError(code: .systemCall, path: path, syscall: syscall, errno: code,
                       message: advice ?? Self.advice(for: code, path: path))
    }

    static func advice(for code: Int32, path: String) -> String {
        switch code {
        case EACCES, EPERM:
            return "permission denied: run as a user who may write \(parentDirectory(of: path)), or choose another home"
        case EROFS: return "the file system is read-only: choose a home on a writable one"
        case ENOSPC, EDQUOT: return "no space or quota left on the file system holding \(parentDirectory(of: path))"
        case EMFILE, ENFILE: return "too many open files: raise the limit (ulimit -n) or use fewer interfaces"
        case ENOTDIR: return "a component of the path is not a directory: check home"
        case ENAMETOOLONG: return "the path is too long: choose a shorter home"
        case ENOENT: return "a directory on the path does not exist and could not be created: check home"
        case EADDRINUSE: return "the address is in use: stop the other process or choose another home"
        case ELOOP: return "too many symbolic links on the path: check home"
        case ENOMEM, ENOBUFS: return "the kernel is out of memory for sockets"
        default: return "check the path and its permissions"
        }
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "the current directory" }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
