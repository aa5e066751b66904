import PacketCore
import Telemetry

/// `--http ADDR:PORT` of a long-running command: the hub its threads publish to and the server
/// that reads it, started before capture and stopped after the final statistics.
public final class TelemetryEndpoint {
    public let hub: TelemetryHub
    public let server: TelemetryServer

    /// Binds `address` and says where on standard error; throws a sentence naming the address.
    public init(command: String, address: String) throws {
        let (host, port) = try TelemetryServer.parse(address: address)
        hub = TelemetryHub(command: command)
        server = try TelemetryServer(host: host, port: port, hub: hub)
        writeStandardError("flowtap \(command): metrics on \(server.url)metrics, status on \(server.url)api/v1/status, dashboard on \(server.url) (no authentication)\n")
    }

    /// Nil when `address` is nil.
    public static func start(command: String, address: String?) throws -> TelemetryEndpoint? {
        guard let address else { return nil }
        return try TelemetryEndpoint(command: command, address: address)
    }

    public func stop() { server.stop() }
}
