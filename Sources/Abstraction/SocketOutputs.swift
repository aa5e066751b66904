import FlowCore
import UnixSockets

/// Interface streams served on UNIX sockets under `home` (SF-TAP's layout:
/// `home/tcp/<if>`, `home/udp/<if>`, `home/icmp/<if>`), through `SocketServer`,
/// which queues whole events per reader and drops, counted, for readers that
/// fall behind.
public final class SocketOutputs: InterfaceOutputs {
    public let home: String
    public let server: SocketServer
    private var ids: [OutputID] = []
    private var paths: [String] = []

    public init(home: String, server: SocketServer) {
        self.home = home
        self.server = server
    }

    public func output(_ relativePath: String) throws -> Int {
        if let index = paths.firstIndex(of: relativePath) { return index }
        let id = try server.addOutput(path: home + "/" + relativePath)
        // Two rules naming one `if` share its socket.
        if let index = ids.firstIndex(of: id) { return index }
        ids.append(id)
        paths.append(relativePath)
        return ids.count - 1
    }

    public func publish(_ output: Int, header: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) throws {
        server.publish(ids[output], header: header, body: body)
    }

    public var outputIDs: [OutputID] { ids }
    public var relativePaths: [String] { paths }
}
