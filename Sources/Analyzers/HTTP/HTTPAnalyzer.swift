import Outputs
// HTTP/1.x transaction analyzer: SF-TAP's `sftap_http.py` record shape.
//
// One object tracks many flows, keyed by the caller's flow id; it is not
// thread-safe (run one per shard). Each direction has an `HTTPParser`;
// requests and final responses are paired in order (pipelining), and one
// JSON line is emitted per pair:
//
//     {"timestamp",…shared fields…,"type":"http","time":T,
//      "client":{"ip","port","time","method":{"method","uri","ver"},"header":{…},"trailer"?,"body"?},
//      "server":{"ip","port","time","response":{"ver","code","status","msg"},"header":{…},"trailer"?,"body"?}}
//
// Documented behaviour:
// - Every record starts with the shared fields (`JSONWriter.beginRecord`: timestamp, flow_id, event_type,
//   src/dest, proto, community_id, vlan), then SF-TAP's "type" and "time".
// - Header names are lower-cased; a name sent once has a string value, a name
//   sent several times an array of its values in order (never folded: values
//   may hold commas), and Set-Cookie is always an array (RFC 6265 §3).
// - `"code"` is a string, as the Python analyzer printed it; `"status"` is
//   the same code as a number (EVE's `http.status`).
// - `"time"` is the capture time of the data carrying the message's first byte.
// - Bodies (off by default) are base64 (standard alphabet, padded), cut at
//   `maxBodyBytes` with `"body_truncated":true`. Bytes lost to a gap inside
//   a body count toward its length and appear as `"body_missing":N`; they
//   are absent from the base64 text.
// - A message cut short by close carries `"incomplete":true`.
// - A request left without a response at close: a record with no "server"
//   (`requestsWithoutResponse`); a response without a request: no "client".
// - 1xx interim responses (100 Continue, 103 Early Hints) are reported in the
//   final response they precede: "server":{…,"interim":[{"code":"100",
//   "msg":"Continue","time":…}]} (at most `HTTPMessage.maxInterim`, all
//   counted in `interimResponses`); 101 and a 2xx to CONNECT are paired. After a 101 both directions are ignored. After a 2xx
//   to CONNECT the tunnel's first client bytes decide (within
//   `HTTPParser.tunnelProbeBytes`): a request line start ("GET /…") means
//   plain HTTP through the proxy, parsed in the same flow with records as
//   usual (`tunnelsParsed`); anything else (TLS, a gap, or server bytes
//   other than line endings before the client's) makes both directions
//   opaque (`tunnelsOpaque`). With `handOffTunnels`, an opaque tunnel's bytes
//   are handed back instead (`data` returns true, `takeTunnel` gives its
//   first bytes and ends the HTTP flow), so the caller can analyse what the
//   tunnel carries, such as TLS.
//   While an Upgrade/CONNECT request awaits its response, later client bytes
//   are held (up to `maxHeaderBytes`), then replayed into the tunnel or, if
//   the server declines, as requests.
// - A gap past the end of a body (or between messages) ends that message
//   with "body_missing" and resynchronises the direction at the next
//   plausible message start (`resyncs`; see `HTTPParser`); after
//   `HTTPParser.maxResyncBytes` skipped bytes it stops with an error record
//   (`resyncGiveUps`). Requests and responses keep pairing in order: a
//   resynced response is paired with the oldest unanswered request, or
//   written without "client" when there is none.
// - An HTTP/0.9 Simple-Request (request line without version) is written
//   with "ver":"HTTP/0.9"; when the answer does not start with "HTTP/" it
//   is a Simple-Response, read until close and written with
//   "ver":"HTTP/0.9","code":"","msg":"" and empty headers.
// - Header lines without a colon are skipped (`ignoredHeaderLines`).
// - Malformed input stops that direction: one error record
//   `{…shared fields…,"type":"http","time","error":"…","direction":"client"|"server","client":{ip,port},"server":{ip,port}}`
//   (its time is that of the latest bytes or gap the flow saw)
//   and `parseErrors`; the other direction continues. Never a trap.
// - Memory per flow: one header line buffer (≤ `maxHeaderBytes`), kept body
//   bytes (≤ `maxBodyBytes` per message) and at most `maxPending` queued
//   requests; more pipelined requests stop the client direction, and more
//   than `maxPending` responses without requests are emitted without "client".
//   The number of flows is bounded by the caller's flow table (close flows).

public struct HTTPEndpoint: Sendable, Equatable {
    public var ip: String
    public var port: UInt16
    public init(ip: String, port: UInt16) {
        self.ip = ip
        self.port = port
    }
}

public struct HTTPCounters: Sendable, Equatable {
    /// Records with both a request and a response.
    public var transactions = 0
    public var requestsWithoutResponse = 0
    public var responsesWithoutRequest = 0
    /// Directions stopped by malformed input (one error record each).
    public var parseErrors = 0
    public var interimResponses = 0
    public var protocolSwitches = 0
    /// Messages cut short by close.
    public var incompleteMessages = 0
    /// Body bytes lost to gaps.
    public var gapBytes = 0
    public var bodiesTruncated = 0
    /// Header or trailer lines without a colon, skipped.
    public var ignoredHeaderLines = 0
    /// HTTP/0.9 answers without a status line.
    public var simpleResponses = 0
    /// Messages found by resynchronising after a gap.
    public var resyncs = 0
    /// Directions that found no message start within `HTTPParser.maxResyncBytes` after a gap.
    public var resyncGiveUps = 0
    /// CONNECT tunnels whose bytes were parsed as HTTP.
    public var tunnelsParsed = 0
    /// CONNECT tunnels left opaque (not HTTP, or undecidable).
    public var tunnelsOpaque = 0
    /// Opaque CONNECT tunnels handed back to the caller (`handOffTunnels`).
    public var tunnelsHandedOff = 0
    /// Data, gap or close for a flow that was never opened.
    public var unknownFlows = 0
    public var records = 0
    public init() {}
}

public final class HTTPAnalyzer {
    public struct Options: Sendable {
        /// Emit base64 bodies.
        public var bodies = false
        public var maxHeaderBytes = 64 << 10
        public var maxBodyBytes = 1 << 20
        /// Requests queued without a response before the client direction stops.
        public var maxPending = 64
        /// Hand an opaque CONNECT tunnel's bytes back to the caller (`takeTunnel`) instead of ignoring them.
        public var handOffTunnels = false
        public init(bodies: Bool = false, maxHeaderBytes: Int = 64 << 10, maxBodyBytes: Int = 1 << 20, maxPending: Int = 64) {
            self.bodies = bodies
            self.maxHeaderBytes = maxHeaderBytes
            self.maxBodyBytes = maxBodyBytes
            self.maxPending = maxPending
        }
    }

    public private(set) var counters = HTTPCounters()
    public let options: Options
    private let emit: RecordLines
    private var flows: [UInt64: Flow] = [:]
    private var writer = JSONWriter()

    /// Method facts the response parser needs, queued per request head.
    private struct Pending {
        var isHead: Bool
        var isConnect: Bool
        var isSimple = false
        var holdsClient = false
    }

    private final class Flow {
        let client: HTTPEndpoint
        let server: HTTPEndpoint
        let vlan: Int?
        let record: RecordFlow?
        /// The time of the latest bytes or gap seen (an error record's time).
        var lastTime = 0.0
        var request: HTTPParser
        var response: HTTPParser
        /// Request heads whose final response has not started.
        var pending: [Pending] = []
        /// Complete messages waiting for their partner.
        var requests: [HTTPMessage] = []
        var responses: [HTTPMessage] = []
        /// The request the response in progress answers.
        var answering: Pending?
        /// Client bytes held while an Upgrade/CONNECT awaits its answer.
        var held: [UInt8]?
        var heldTime = 0.0
        var heldGap = false
        /// A CONNECT tunnel opened; its first client bytes are being examined.
        var tunnelUndecided = false
        /// An opaque tunnel's first bytes, for the caller to take (`handOffTunnels`).
        var handOff: [TunnelChunk]?
        /// 1xx interim responses waiting for the final response they precede.
        var interim: [(code: Int, reason: [UInt8], time: Double)] = []

        init(client: HTTPEndpoint, server: HTTPEndpoint, vlan: Int?, record: RecordFlow?, time: Double, options: Options) {
            self.client = client
            self.server = server
            self.vlan = vlan
            self.record = record
            lastTime = time
            request = HTTPParser(role: .request, keepBodies: options.bodies,
                                 maxHeaderBytes: options.maxHeaderBytes, maxBodyBytes: options.maxBodyBytes)
            response = HTTPParser(role: .response, keepBodies: options.bodies,
                                  maxHeaderBytes: options.maxHeaderBytes, maxBodyBytes: options.maxBodyBytes)
        }
    }

    /// `lines` receives each record, its newline included, valid during the call.
    public init(options: Options = .init(), lines: @escaping RecordLines) {
        self.options = options
        self.emit = lines
    }

    /// Records as `String` lines (tests and tools); `lines:` hands the bytes without making a String.
    public convenience init(options: Options = .init(), emit: @escaping (String) -> Void) {
        self.init(options: options, lines: { emit(String(decoding: $0, as: UTF8.self)) })
    }


    public var openFlows: Int { flows.count }

    /// `record`: the flow's shared record fields (`flow_id`, endpoints, Community ID), written in each record.
    public func open(flow id: UInt64, client: HTTPEndpoint, server: HTTPEndpoint, vlan: Int?, time: Double, record: RecordFlow? = nil) {
        if let old = flows[id] { finish(old) }
        flows[id] = Flow(client: client, server: server, vlan: vlan, record: record, time: time, options: options)
    }

    /// Bytes of a tunnel the analyzer hands back.
    public struct TunnelChunk: Sendable, Equatable {
        public var fromClient: Bool
        public var bytes: [UInt8]
        public var time: Double
    }

    /// Parses a chunk. Returns true when the flow became an opaque CONNECT tunnel to hand off
    /// (`handOffTunnels`): the caller then takes it with `takeTunnel`.
    @discardableResult
    public func data(flow id: UInt64, fromClient: Bool, bytes: UnsafeRawBufferPointer, time: Double) -> Bool {
        guard let flow = flows[id] else { counters.unknownFlows += 1; return false }
        flow.lastTime = time
        if fromClient { driveClient(flow, bytes, time) } else { driveServer(flow, bytes, time) }
        return flow.handOff != nil
    }

    /// Ends a flow whose CONNECT tunnel became opaque, returning the tunnel's first bytes
    /// (in arrival order; empty when a gap hid them).
    public func takeTunnel(flow id: UInt64) -> [TunnelChunk] {
        guard let flow = flows.removeValue(forKey: id) else { return [] }
        let chunks = flow.handOff ?? []
        flow.handOff = nil
        finish(flow)
        counters.tunnelsHandedOff += 1
        return chunks
    }

    public func gap(flow id: UInt64, fromClient: Bool, length: Int, time: Double? = nil) {
        guard let flow = flows[id] else { counters.unknownFlows += 1; return }
        guard length > 0 else { return }
        if let time { flow.lastTime = time }
        if fromClient, flow.held != nil {
            flow.heldGap = true
            return
        }
        if (fromClient ? flow.request : flow.response).anomaly != nil { return }
        if flow.tunnelUndecided {
            // A gap in either direction before the tunnel showed what it carries.
            flow.request.becomeOpaque()
            settleTunnel(flow)
            return
        }
        let step = fromClient ? flow.request.gap(length) : flow.response.gap(length)
        switch step {
        case .end:
            counters.gapBytes &+= length
            if fromClient { requestEnded(flow) } else { responseEnded(flow) }
            if let anomaly = (fromClient ? flow.request : flow.response).anomaly { error(flow, fromClient: fromClient, anomaly) }
        case .error(let anomaly):
            error(flow, fromClient: fromClient, anomaly)
        default:
            let parser = fromClient ? flow.request : flow.response
            if !parser.isOpaque { counters.gapBytes &+= length }
        }
    }

    public func close(flow id: UInt64, time: Double) {
        guard let flow = flows.removeValue(forKey: id) else { counters.unknownFlows += 1; return }
        finish(flow)
    }

    /// Closes every open flow (end of input).
    public func closeAll(time: Double) {
        for id in flows.keys.sorted() { close(flow: id, time: time) }
    }

    // MARK: - Directions

    private func driveClient(_ flow: Flow, _ bytes: UnsafeRawBufferPointer, _ time: Double) {
        var off = 0
        while true {
            if flow.handOff != nil {
                // The tunnel was handed off while this chunk was parsed: the rest is the tunnel's.
                if off < bytes.count { flow.handOff!.append(TunnelChunk(fromClient: true, bytes: Array(bytes[off...]), time: time)) }
                return
            }
            if flow.held != nil {
                hold(flow, UnsafeRawBufferPointer(rebasing: bytes[off...]), time)
                return
            }
            // A stopped direction was reported when it stopped.
            if flow.request.anomaly != nil { return }
            let probing = flow.tunnelUndecided && options.handOffTunnels
            let probed = probing ? flow.request.probedBytes : []
            let step = flow.request.parse(UnsafeRawBufferPointer(rebasing: bytes[off...]), time: time)
            settleTunnel(flow)
            if probing && flow.request.isOpaque {
                flow.handOff = (flow.handOff ?? []) + [TunnelChunk(fromClient: true, bytes: probed + Array(bytes[off...]), time: time)]
                return
            }
            switch step {
            case .needMore:
                return
            case .error(let anomaly):
                error(flow, fromClient: true, anomaly)
                return
            case .head(let n):
                off += n
                let head = flow.request.current
                if head.resynced { counters.resyncs += 1 }
                switch HTTPParser.framing(for: head, requestMethod: nil) {
                case .failure(let anomaly):
                    flow.request.stop(anomaly)
                    error(flow, fromClient: true, anomaly)
                    return
                case .success(let framing):
                    if max(flow.pending.count, flow.requests.count) >= options.maxPending {
                        flow.request.stop(.tooManyPending)
                        error(flow, fromClient: true, .tooManyPending)
                        return
                    }
                    let method = head.method ?? []
                    flow.pending.append(Pending(isHead: method == Self.head, isConnect: method == Self.connect, isSimple: head.isSimple))
                    flow.request.startBody(framing)
                }
            case .end(let n):
                off += n
                requestEnded(flow)
            }
        }
    }

    private func driveServer(_ flow: Flow, _ bytes: UnsafeRawBufferPointer, _ time: Double) {
        var off = 0
        while true {
            if flow.handOff != nil {
                if off < bytes.count { flow.handOff!.append(TunnelChunk(fromClient: false, bytes: Array(bytes[off...]), time: time)) }
                return
            }
            if flow.response.anomaly != nil { return }
            if flow.tunnelUndecided {
                // Stray line endings after the proxy's answer are empty lines;
                // anything else means the server spoke first: not a proxied HTTP request.
                while off < bytes.count, bytes[off] == 0x0D || bytes[off] == 0x0A { off += 1 }
                if off < bytes.count {
                    let probed = flow.request.probedBytes
                    flow.request.becomeOpaque()
                    settleTunnel(flow)
                    if options.handOffTunnels {
                        // The server spoke first: the client's probed bytes (if any), then these.
                        var chunks = flow.handOff ?? []
                        if !probed.isEmpty { chunks.append(TunnelChunk(fromClient: true, bytes: probed, time: time)) }
                        chunks.append(TunnelChunk(fromClient: false, bytes: Array(bytes[off...]), time: time))
                        flow.handOff = chunks
                        return
                    }
                }
            }
            if off < bytes.count, flow.response.isIdle, answersSimpleRequest(flow),
               !Self.startsLikeStatusLine(UnsafeRawBufferPointer(rebasing: bytes[off...])) {
                // RFC 1945 §6: a Simple-Response is the body alone, up to close.
                counters.simpleResponses += 1
                flow.answering = flow.pending.isEmpty ? nil : flow.pending.removeFirst()
                flow.response.startSimpleResponse(time: time)
            }
            switch flow.response.parse(UnsafeRawBufferPointer(rebasing: bytes[off...]), time: time) {
            case .needMore:
                return
            case .error(let anomaly):
                error(flow, fromClient: false, anomaly)
                return
            case .head(let n):
                off += n
                let head = flow.response.current
                if head.resynced { counters.resyncs += 1 }
                let code = head.code ?? 0
                if code / 100 == 1 && code != 101 {
                    flow.response.startBody(.none)
                    continue
                }
                let answering: Pending? = flow.pending.isEmpty ? nil : flow.pending.removeFirst()
                flow.answering = answering
                let method: [UInt8]? = answering.map { $0.isHead ? Self.head : $0.isConnect ? Self.connect : Self.get }
                switch HTTPParser.framing(for: head, requestMethod: method) {
                case .failure(let anomaly):
                    flow.response.stop(anomaly)
                    error(flow, fromClient: false, anomaly)
                    return
                case .success(let framing):
                    flow.response.startBody(framing)
                }
            case .end(let n):
                off += n
                responseEnded(flow)
            }
        }
    }

    /// The next response answers an HTTP/0.9 request (queued, or still reading its optional headers).
    private func answersSimpleRequest(_ flow: Flow) -> Bool {
        if let first = flow.pending.first { return first.isSimple }
        return flow.request.current.isSimple
    }

    /// The bytes begin with "HTTP/" (or with as much of it as there is).
    static func startsLikeStatusLine(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let prefix: StaticString = "HTTP/"
        for i in 0 ..< min(bytes.count, prefix.utf8CodeUnitCount) where bytes[i] != prefix.utf8Start[i] { return false }
        return true
    }

    private func requestEnded(_ flow: Flow) {
        let message = flow.request.takeMessage()
        note(message)
        let method = message.method ?? []
        flow.requests.append(message)
        // The client waits for the server's answer before switching protocols.
        if (method == Self.connect || message.header("upgrade") != nil), !flow.pending.isEmpty {
            flow.pending[flow.pending.count - 1].holdsClient = true
            flow.held = []
        }
        pair(flow)
    }

    private func responseEnded(_ flow: Flow) {
        var message = flow.response.takeMessage()
        let code = message.code ?? 0
        if code / 100 == 1 && code != 101 {
            counters.interimResponses += 1
            if case .response(_, _, let reason) = message.start, flow.interim.count < HTTPMessage.maxInterim {
                flow.interim.append((code, reason, message.time))
            }
            return
        }
        message.interim = flow.interim
        flow.interim.removeAll()
        note(message)
        let answering = flow.answering
        flow.answering = nil
        flow.responses.append(message)
        pair(flow)
        if code == 101 {
            // Protocol switch: neither direction is HTTP any more.
            counters.protocolSwitches += 1
            flow.request.becomeOpaque()
            flow.response.becomeOpaque()
            flow.held = nil
        } else if answering?.isConnect == true && code / 100 == 2 {
            counters.protocolSwitches += 1
            openTunnel(flow)
        } else if answering?.holdsClient == true, let held = flow.held {
            flow.held = nil
            if flow.heldGap {
                flow.heldGap = false
                flow.request.stop(.gapInHeader)
                error(flow, fromClient: true, .gapInHeader)
            } else {
                held.withUnsafeBytes { driveClient(flow, $0, flow.heldTime) }
            }
        }
    }

    /// A 2xx to CONNECT: the tunnel's first client bytes (held so far, or yet
    /// to come) decide whether it carries HTTP.
    private func openTunnel(_ flow: Flow) {
        let held = flow.held ?? []
        let heldGap = flow.heldGap
        flow.held = nil
        flow.heldGap = false
        if !heldGap { flow.request.startTunnelProbe() }
        guard flow.request.isProbingTunnel else {
            flow.request.becomeOpaque()
            flow.response.becomeOpaque()
            counters.tunnelsOpaque += 1
            if options.handOffTunnels { flow.handOff = flow.handOff ?? [] }
            return
        }
        flow.tunnelUndecided = true
        if !held.isEmpty { held.withUnsafeBytes { driveClient(flow, $0, flow.heldTime) } }
    }

    /// Counts the tunnel's fate once its first bytes decided it; an opaque
    /// tunnel silences the server direction too.
    private func settleTunnel(_ flow: Flow) {
        guard flow.tunnelUndecided, !flow.request.isProbingTunnel else { return }
        flow.tunnelUndecided = false
        if flow.request.isOpaque {
            counters.tunnelsOpaque += 1
            flow.response.becomeOpaque()
            pair(flow)
        } else {
            counters.tunnelsParsed += 1
        }
    }

    private func hold(_ flow: Flow, _ bytes: UnsafeRawBufferPointer, _ time: Double) {
        guard !bytes.isEmpty, var held = flow.held else { return }
        flow.held = nil
        if held.isEmpty { flow.heldTime = time }
        if held.count + bytes.count > options.maxHeaderBytes {
            // Too much to be a declined upgrade followed by a request: treat it as tunnelled.
            flow.request.becomeOpaque()
            return
        }
        held.append(contentsOf: bytes)
        flow.held = held
    }

    private func note(_ message: HTTPMessage) {
        if message.incomplete { counters.incompleteMessages += 1 }
        if message.bodyTruncated { counters.bodiesTruncated += 1 }
        counters.ignoredHeaderLines += message.ignoredLines
    }

    /// Emits every complete request/response pair, in order.
    private func pair(_ flow: Flow) {
        while !flow.requests.isEmpty, !flow.responses.isEmpty {
            let request = flow.requests.removeFirst()
            let response = flow.responses.removeFirst()
            counters.transactions += 1
            record(flow, request, response)
        }
        // A stopped direction will never supply the partner.
        if flow.response.anomaly != nil || flow.response.isOpaque {
            while !flow.requests.isEmpty {
                counters.requestsWithoutResponse += 1
                record(flow, flow.requests.removeFirst(), nil)
            }
        }
        // Responses wait only for requests still in flight; a stopped client
        // direction or a flood of unrequested responses will not be answered.
        if flow.request.anomaly != nil && flow.pending.isEmpty || flow.responses.count > options.maxPending {
            while !flow.responses.isEmpty {
                counters.responsesWithoutRequest += 1
                record(flow, nil, flow.responses.removeFirst())
            }
        }
    }

    private func finish(_ flow: Flow) {
        if flow.response.finish() { responseEnded(flow) }
        if flow.request.finish() {
            let message = flow.request.takeMessage()
            note(message)
            flow.requests.append(message)
        }
        pair(flow)
        for request in flow.requests {
            counters.requestsWithoutResponse += 1
            record(flow, request, nil)
        }
        for response in flow.responses {
            counters.responsesWithoutRequest += 1
            record(flow, nil, response)
        }
        flow.requests.removeAll()
        flow.responses.removeAll()
    }

    // MARK: - Records

    private static let head = Array("HEAD".utf8)
    private static let connect = Array("CONNECT".utf8)
    private static let get = Array("GET".utf8)
    private static let http09 = Array("HTTP/0.9".utf8)

    private func error(_ flow: Flow, fromClient: Bool, _ anomaly: HTTPAnomaly) {
        counters.parseErrors += 1
        if anomaly == .resyncFailed { counters.resyncGiveUps += 1 }
        writer.beginRecord("http", time: flow.lastTime, flow: flow.record, vlan: flow.vlan)
        writer.string("error", anomaly.text)
        writer.string("direction", fromClient ? "client" : "server")
        endpoint("client", flow.client)
        endpoint("server", flow.server)
        writer.endObject()
        counters.records += 1
        writer.withLine(emit)
        pair(flow)
    }

    private func endpoint(_ key: StaticString, _ e: HTTPEndpoint) {
        writer.beginObject(key)
        writer.string("ip", e.ip)
        writer.number("port", Int(e.port))
        writer.endObject()
    }

    private func record(_ flow: Flow, _ request: HTTPMessage?, _ response: HTTPMessage?) {
        // Every record kind carries a top-level time: here the request's (the response's when alone).
        writer.beginRecord("http", time: request?.time ?? response?.time ?? flow.lastTime, flow: flow.record, vlan: flow.vlan)
        if let request { side("client", flow.client, request) }
        if let response { side("server", flow.server, response) }
        writer.endObject()
        counters.records += 1
        writer.withLine(emit)
    }

    private func side(_ key: StaticString, _ e: HTTPEndpoint, _ m: HTTPMessage) {
        writer.beginObject(key)
        writer.string("ip", e.ip)
        writer.number("port", Int(e.port))
        writer.number("time", m.time)
        switch m.start {
        case .request(let method, let uri, let version):
            writer.beginObject("method")
            writer.string("method", method)
            writer.string("uri", uri)
            writer.string("ver", m.isSimple ? Self.http09 : version)
            writer.endObject()
        case .response(let version, let code, let reason):
            writer.beginObject("response")
            writer.string("ver", m.isSimple ? Self.http09 : version)
            writer.string("code", m.isSimple ? "" : String(code))
            if !m.isSimple { writer.number("status", code) }
            writer.string("msg", reason)
            writer.endObject()
            if !m.interim.isEmpty {
                writer.beginArray("interim")
                for response in m.interim {
                    writer.beginObject()
                    writer.string("code", String(response.code))
                    writer.string("msg", response.reason)
                    writer.number("time", response.time)
                    writer.endObject()
                }
                writer.endArray()
            }
        }
        fields("header", m.headers)
        if !m.trailers.isEmpty { fields("trailer", m.trailers) }
        if options.bodies {
            writer.string("body", Base64.encode(m.body))
            if m.bodyTruncated { writer.bool("body_truncated", true) }
        }
        if m.bodyMissing > 0 { writer.number("body_missing", m.bodyMissing) }
        if m.incomplete { writer.bool("incomplete", true) }
        writer.endObject()
    }

    static let setCookie = Array("set-cookie".utf8)

    /// Header fields as an object: a name sent once has its value as a string; a name sent several times
    /// (and Set-Cookie always, RFC 6265 §3) has an array of its values in order, never folded, so no value
    /// that holds a comma is split or merged.
    private func fields(_ key: StaticString, _ list: [(name: [UInt8], value: [UInt8])]) {
        writer.beginObject(key)
        // Header lists are short: a scan per field is cheaper than hashing every name.
        for i in list.indices where !list[..<i].contains(where: { $0.name == list[i].name }) {
            let name = String(decoding: list[i].name, as: UTF8.self)
            guard list[i].name == Self.setCookie || list[(i + 1)...].contains(where: { $0.name == list[i].name }) else {
                writer.key(escaping: name)
                writer.string(nil, list[i].value)
                continue
            }
            writer.key(escaping: name)
            writer.beginArray()
            for field in list[i...] where field.name == list[i].name { writer.string(nil, field.value) }
            writer.endArray()
        }
        writer.endObject()
    }
}
