#if canImport(Glibc)
import Glibc
#endif
import Engine
import Forwarding
import Foundation
import PacketCore
import Synchronization

/// A UDP socket on loopback for tests: bound to a free port, sends and receives with the peer's address.
final class TestSocket {
    let fd: Int32
    let port: UInt16
    let ipv6: Bool

    init(ipv6: Bool = false, address: String? = nil, port: UInt16 = 0, receiveBuffer: Int32 = 8 << 20) {
        self.ipv6 = ipv6
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        self.fd = fd
        var size = receiveBuffer
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var (storage, length) = ForwardSockets.storage(IPAddress(address ?? (ipv6 ? "::1" : "127.0.0.1"))!, port: port)
        _ = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        var bound = sockaddr_storage()
        var boundLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &boundLength) } }
        self.port = withUnsafePointer(to: &bound) { ForwardSockets.endpoint($0).1 }
    }

    deinit { close(fd) }

    /// A port nobody listens on (bound, read, closed).
    static func freePort(ipv6: Bool = false) -> UInt16 { TestSocket(ipv6: ipv6).port }

    func send(_ bytes: [UInt8], to port: UInt16) {
        var (storage, length) = ForwardSockets.storage(IPAddress(ipv6 ? "::1" : "127.0.0.1")!, port: port)
        _ = bytes.withUnsafeBytes { b in
            withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, b.baseAddress, b.count, 0, $0, length) } }
        }
    }

    /// Everything that arrives until `quiet` seconds pass with nothing new: (sender address, port, bytes).
    func receiveAll(quiet: Double = 0.5) -> [(IPAddress, UInt16, [UInt8])] {
        var out: [(IPAddress, UInt16, [UInt8])] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while poll(&p, 1, Int32(quiet * 1000)) > 0 {
            var from = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = buffer.withUnsafeMutableBytes { b in
                withUnsafeMutablePointer(to: &from) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, b.baseAddress, b.count, 0, $0, &length) } }
            }
            if n < 0 { break }
            let (address, port) = withUnsafePointer(to: &from) { ForwardSockets.endpoint($0) }
            out.append((address, port, Array(buffer[0 ..< n])))
        }
        return out
    }
}

/// `ForwardSession.run` on its own thread, stopped by `stop()`, which returns the summary.
final class RunningForwarder: @unchecked Sendable {
    let stopFlag = Atomic<Bool>(false)
    let done = DispatchSemaphore(value: 0)
    let logLines = Mutex<[String]>([])
    var summary = ""
    var failure: (any Error)?

    init(_ session: ForwardSession) {
        Thread.detachNewThread { [self] in
            do {
                summary = try session.run(log: { [self] line in logLines.withLock { $0.append(line) } }, stop: { [self] in stopFlag.load(ordering: .relaxed) })
            } catch {
                failure = error
            }
            done.signal()
        }
        usleep(200_000) // sockets bound, workers polling
    }

    var log: [String] { logLines.withLock { $0 } }

    func stop() throws -> String {
        stopFlag.store(true, ordering: .relaxed)
        done.wait()
        if let failure { throw failure }
        return summary
    }
}

/// A rule file in the temporary directory, removed by the caller.
func writeRules(_ text: String, name: String = "rules-\(getpid())-\(UInt32.random(in: 0 ... .max)).yaml") -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(name).path
    FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    return path
}
