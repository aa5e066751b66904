#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import PacketCore
import Synchronization

/// The `--http ADDR:PORT` endpoint of long-running commands, on one thread of its own (a SwiftNIO
/// event loop): `GET /metrics` (Prometheus text), `GET /api/v1/status` (JSON), `GET /` (the live
/// dashboard). It reads only what the packet threads publish to the `TelemetryHub`, so a slow,
/// broken or hostile client costs this thread, never the packet path.
///
/// Limits: at most `maxConnections` connections (more are closed on accept and counted); a request
/// must arrive whole within `requestTimeout` seconds of the connection opening or of the previous
/// answer (slow senders and idle keep-alive connections are closed); request heads are capped by
/// SwiftNIO's parser (80 KiB; larger gets 400 and a close); bodies are read and thrown away. There is
/// no authentication and no TLS: bind to localhost or put a proxy in front.
public final class TelemetryServer: Sendable {
    public struct Limits: Sendable {
        public var maxConnections = 1024
        public var requestTimeout: Double = 10
        public init() {}
    }

    /// Counters of the endpoint itself (also exported as metrics).
    final class Statistics: Sendable {
        let connections = Atomic<Int>(0)
        let accepted = Atomic<UInt64>(0)
        let refused = Atomic<UInt64>(0)
        let timedOut = Atomic<UInt64>(0)
        let requests = Atomic<UInt64>(0)
    }

    public let hub: TelemetryHub
    public let limits: Limits
    /// The address actually bound (the port is the kernel's choice when 0 was asked for).
    public let boundAddress: String
    public let boundPort: Int
    let group: MultiThreadedEventLoopGroup
    let channel: any Channel
    let statistics: Statistics

    /// Binds `host:port` and serves until `stop`. Throws a sentence naming the address when it cannot bind.
    public init(host: String, port: Int, hub: TelemetryHub, limits: Limits = Limits()) throws {
        self.hub = hub
        self.limits = limits
        Self.raiseDescriptorLimit(to: limits.maxConnections + 1024)
        let statistics = Statistics()
        self.statistics = statistics
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        let pages = PageRenderer(hub: hub, statistics: statistics)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 512)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { channel in
                let open = statistics.connections.wrappingAdd(1, ordering: .relaxed).newValue
                channel.closeFuture.whenComplete { _ in statistics.connections.wrappingSubtract(1, ordering: .relaxed) }
                guard open <= limits.maxConnections else {
                    statistics.refused.wrappingAdd(1, ordering: .relaxed)
                    return channel.close()
                }
                statistics.accepted.wrappingAdd(1, ordering: .relaxed)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(RequestHandler(pages: pages, timeout: limits.requestTimeout))
                }
            }
        do {
            channel = try bootstrap.bind(host: host, port: port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw TelemetryError(message: "cannot serve HTTP on \(host):\(port): \(error)")
        }
        boundAddress = channel.localAddress?.ipAddress ?? host
        boundPort = channel.localAddress?.port ?? port
    }

    /// The connection limit needs descriptors beyond the usual soft limit of 1024 (capture handles,
    /// sockets and files need theirs too): the soft limit is raised toward the hard one.
    static func raiseDescriptorLimit(to wanted: Int) {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < rlim_t(wanted) else { return }
        limit.rlim_cur = min(limit.rlim_max, rlim_t(wanted))
        _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// Stops accepting, closes every connection and ends the thread.
    public func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    /// "http://ADDR:PORT/" for the startup line.
    public var url: String {
        let host = boundAddress.contains(":") ? "[\(boundAddress)]" : boundAddress
        return "http://\(host):\(boundPort)/"
    }
}

public struct TelemetryError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Renders the three pages; lives on the server's one event loop (the exposition is not shared).
final class PageRenderer: @unchecked Sendable {
    let hub: TelemetryHub
    let statistics: TelemetryServer.Statistics
    private let exposition = PrometheusExposition()

    init(hub: TelemetryHub, statistics: TelemetryServer.Statistics) {
        self.hub = hub
        self.statistics = statistics
    }

    func metrics() -> [UInt8] {
        var (snapshot, published) = hub.latest
        snapshot.gauge("flowtap_http_connections", "Connections open to the --http endpoint.", Double(statistics.connections.load(ordering: .relaxed)))
        snapshot.counter("flowtap_http_connections_total", "Connections the --http endpoint accepted or refused.", statistics.accepted.load(ordering: .relaxed), ["result": "accepted"])
        snapshot.counter("flowtap_http_connections_total", "Connections the --http endpoint accepted or refused.", statistics.refused.load(ordering: .relaxed), ["result": "refused"])
        snapshot.counter("flowtap_http_timeouts_total", "Connections closed because a request did not arrive whole in time.", statistics.timedOut.load(ordering: .relaxed))
        snapshot.counter("flowtap_http_requests_total", "Requests the --http endpoint answered.", statistics.requests.load(ordering: .relaxed))
        return exposition.render(snapshot, command: hub.command, version: FlowTapVersion.current, startTime: hub.startTime, published: published)
    }

    func status() -> [UInt8] { StatusDocument.render(hub: hub) }
}

/// One connection: answers GET and HEAD on the known paths, closes slow or idle connections.
final class RequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let pages: PageRenderer
    let timeout: TimeAmount
    var head: HTTPRequestHead?
    var deadline: Scheduled<Void>?

    init(pages: PageRenderer, timeout: Double) {
        self.pages = pages
        self.timeout = .milliseconds(Int64(timeout * 1000))
    }

    func handlerAdded(context: ChannelHandlerContext) { armDeadline(context: context) }

    func handlerRemoved(context: ChannelHandlerContext) { deadline?.cancel() }

    func armDeadline(context: ChannelHandlerContext) {
        deadline?.cancel()
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let statistics = pages.statistics
        deadline = context.eventLoop.scheduleTask(in: timeout) {
            statistics.timedOut.wrappingAdd(1, ordering: .relaxed)
            loopBound.value.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
        case .body:
            break
        case .end:
            guard let request = head else { return }
            head = nil
            respond(context: context, request: request)
            armDeadline(context: context)
        }
    }

    func respond(context: ChannelHandlerContext, request: HTTPRequestHead) {
        pages.statistics.requests.wrappingAdd(1, ordering: .relaxed)
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "/"
        var headers = HTTPHeaders()
        let status: HTTPResponseStatus
        let body: [UInt8]
        guard request.method == .GET || request.method == .HEAD else {
            headers.add(name: "Allow", value: "GET, HEAD")
            send(context: context, request: request, status: .methodNotAllowed, headers: headers, contentType: "text/plain; charset=utf-8",
                 body: Array("only GET and HEAD are served\n".utf8))
            return
        }
        switch path {
        case "/metrics":
            status = .ok
            body = pages.metrics()
            headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
        case "/api/v1/status":
            status = .ok
            body = pages.status()
            headers.add(name: "Content-Type", value: "application/json")
        case "/", "/index.html":
            status = .ok
            body = DashboardPage.html
            headers.add(name: "Content-Type", value: "text/html; charset=utf-8")
        default:
            status = .notFound
            body = Array("not found; FlowTap serves /metrics, /api/v1/status and / (the dashboard)\n".utf8)
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        }
        send(context: context, request: request, status: status, headers: headers, contentType: nil, body: body)
    }

    func send(context: ChannelHandlerContext, request: HTTPRequestHead, status: HTTPResponseStatus, headers: HTTPHeaders, contentType: String?, body: [UInt8]) {
        var headers = headers
        if let contentType { headers.add(name: "Content-Type", value: contentType) }
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Cache-Control", value: "no-store")
        let keepAlive = request.isKeepAlive && status != .methodNotAllowed
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { loopBound.value.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

extension TelemetryServer {
    /// `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (every address) from `--http`; throws a sentence naming
    /// what is wrong.
    public static func parse(address text: String) throws(TelemetryError) -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":") else {
            throw TelemetryError(message: "--http \(text): give ADDRESS:PORT, e.g. 127.0.0.1:9100")
        }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        guard let port = Int(portText), (0 ... 65535).contains(port) else {
            throw TelemetryError(message: "--http \(text): the port must be a number from 0 to 65535 (0 lets the kernel choose)")
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "::" }
        guard !host.contains(":") || text.hasPrefix("[") || host == "::" else {
            throw TelemetryError(message: "--http \(text): write an IPv6 address in brackets, e.g. [::1]:9100")
        }
        return (host, port)
    }
}

extension TelemetryServer {
    /// What the endpoint answers to `request` (raw bytes as a client sent them), through the same
    /// pipeline on an in-memory channel: for the fuzzer and for tests of what no client library sends.
    public static func respond(to request: UnsafeRawBufferPointer, hub: TelemetryHub) -> [UInt8] {
        let channel = EmbeddedChannel()
        // Closing tears the pipeline down (its handlers and the channel refer to each other).
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        let statistics = Statistics()
        do {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
            try channel.pipeline.syncOperations.addHandler(RequestHandler(pages: PageRenderer(hub: hub, statistics: statistics), timeout: 10))
            var buffer = channel.allocator.buffer(capacity: request.count)
            buffer.writeBytes(request)
            try channel.writeInbound(buffer)
        } catch {
            // A request the parser refuses ends in an error here, as it closes a real connection.
        }
        var answer: [UInt8] = []
        while let part = try? channel.readOutbound(as: ByteBuffer.self) { answer += part.readableBytesView }
        return answer
    }
}
