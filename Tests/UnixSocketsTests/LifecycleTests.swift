#if canImport(Glibc)
import Glibc
#endif
import Foundation
import UnixSockets
import XCTest

final class LifecycleTests: XCTestCase {
    private var home: TemporaryHome!

    override func setUpWithError() throws { home = try TemporaryHome() }
    override func tearDown() { home?.remove() }

    private func expectError(_ code: SocketError.Code, mentioning words: [String],
                             file: StaticString = #filePath, line: UInt = #line,
                             _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let error = error as? SocketError else { return XCTFail("not an SocketError: \(error)", file: file, line: line) }
            XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
            for word in words {
                XCTAssertTrue(error.description.contains(word), "'\(error)' does not mention '\(word)'", file: file, line: line)
            }
        }
    }

    func testRegularFileAtThePathIsRefusedAndKept() throws {
        let server = SocketServer()
        defer { server.close() }
        XCTAssertEqual(mkdir(home.path + "/tcp", 0o755), 0)
        let path = home.path + "/tcp/http"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("keep me".utf8)))
        expectError(.notASocket, mentioning: [path, "not a socket", "refusing"]) { _ = try server.addOutput(path: path) }
        XCTAssertEqual(FileManager.default.contents(atPath: path), Data("keep me".utf8))
    }

    func testTooLongPath() throws {
        let server = SocketServer()
        defer { server.close() }
        let path = home.path + "/tcp/" + String(repeating: "x", count: 120)
        expectError(.pathTooLong, mentioning: ["107", "choose a shorter home"]) { _ = try server.addOutput(path: path) }
        XCTAssertFalse(home.exists("tcp"), "nothing is created for a path that cannot work")
        // 107 bytes exactly is fine.
        let longest = home.path + "/" + String(repeating: "y", count: 107 - home.path.utf8.count - 1)
        XCTAssertEqual(longest.utf8.count, 107)
        XCTAssertNoThrow(try server.addOutput(path: longest))
    }

    func testParentThatIsAFile() throws {
        let server = SocketServer()
        defer { server.close() }
        XCTAssertTrue(FileManager.default.createFile(atPath: home.path + "/udp", contents: nil))
        expectError(.notADirectory, mentioning: ["not a directory"]) { _ = try server.addOutput(path: home.path + "/udp/dns") }
    }

    func testPermissionDeniedNamesTheSyscall() throws {
        if geteuid() == 0 { throw XCTSkip("root may write anywhere") }
        let server = SocketServer()
        defer { server.close() }
        XCTAssertEqual(mkdir(home.path + "/locked", 0o500), 0)
        defer { chmod(home.path + "/locked", 0o700) }
        expectError(.systemCall, mentioning: ["mkdir(2)", "errno 13", "permission denied"]) {
            _ = try server.addOutput(path: home.path + "/locked/tcp/http")
        }
    }

    func testLiveSocketIsNotStolenButStaleOneIsReplaced() throws {
        let path = home.path + "/tcp/http"
        let first = SocketServer()
        _ = try first.addOutput(path: path)
        let second = SocketServer()
        defer { second.close() }
        expectError(.inUse, mentioning: ["another process is listening"]) { _ = try second.addOutput(path: path) }
        XCTAssertTrue(home.exists("tcp/http"))

        // A socket file nobody listens on (a crashed run) is removed and rebound.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let stale = home.path + "/udp/stale"
        XCTAssertEqual(mkdir(home.path + "/udp", 0o755), 0)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in stale.utf8.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0)
        close(fd)
        let output = try second.addOutput(path: stale)
        let client = try TestClient(path: stale)
        XCTAssertTrue(try second.waitForReaders([output], timeout: .seconds(2)))
        client.close()
        first.close()
    }

    func testInputAndOutputCannotShareAPath() throws {
        let server = SocketServer()
        defer { server.close() }
        let path = home.path + "/loopback7"
        _ = try server.addOutput(path: path)
        expectError(.pathConflict, mentioning: ["already"]) { _ = try server.addInput(path: path, onData: { _, _ in .continue }) }
    }

    /// close() unlinks every socket it bound, icmp/ included, and the
    /// directories it made; deinit does the same.
    func testCloseRemovesEverySocketFile() throws {
        let names = ["tcp/http", "tcp/http0", "udp/dns", "icmp/icmp", "icmp/icmpv6"]
        let server = SocketServer()
        for name in names { _ = try server.addOutput(path: home.path + "/" + name) }
        _ = try server.addInput(path: home.path + "/loopback7", onData: { _, _ in .continue })
        _ = try server.addInput(path: home.path + "/pcap", onData: { _, _ in .continue })
        let reader = try TestClient(path: home.path + "/icmp/icmp")
        try server.poll(timeoutMilliseconds: 10)
        for name in names + ["loopback7", "pcap"] { XCTAssertTrue(home.exists(name), name) }
        server.close()
        for name in names + ["loopback7", "pcap", "tcp", "udp", "icmp"] { XCTAssertFalse(home.exists(name), name) }
        XCTAssertTrue(home.exists(""), "home existed before and stays")
        reader.readAvailable()
        XCTAssertTrue(reader.sawEOF)
        server.close()  // twice is harmless

        do {
            let scoped = SocketServer()
            _ = try scoped.addOutput(path: home.path + "/icmp/icmp")
            XCTAssertTrue(home.exists("icmp/icmp"))
        }
        XCTAssertFalse(home.exists("icmp/icmp"), "deinit unlinks too")
    }

    /// A socket someone else put at the path after us is not ours to unlink.
    func testCloseLeavesAReplacedFileAlone() throws {
        let server = SocketServer()
        let path = home.path + "/tcp/http"
        _ = try server.addOutput(path: path)
        XCTAssertEqual(unlink(path), 0)
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("other".utf8)))
        server.close()
        XCTAssertEqual(FileManager.default.contents(atPath: path), Data("other".utf8))
    }
}
