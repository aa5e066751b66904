import Outputs
import Foundation
import PacketCore

/// QUIC analyzer: decrypts the Initial packets of each UDP flow (RFC 9001 §5, RFC 9369 for v2),
/// reassembles their CRYPTO frames and parses the ClientHello and ServerHello inside.
///
/// One record per connection attempt:
/// `{"type":"quic","time","vlan"?,"version","dcid","retry"?,"scid"?,"sni"?,"alpn"?,"ja4"?,"client":{…},"server":{…}}`,
/// emitted as soon as both hellos are parsed, or at `close` with whichever was seen (or with
/// neither, once a packet of a known version was seen). "version" is "1", "2" or the wire value in
/// hex; "dcid" is the client's first Destination Connection ID (the Initial keys' input), hex.
/// client: ip, port, scid, and the ClientHello fields of the TLS record (`clientHelloFields`,
///         JA4 with protocol letter "q"); server: ip, port, scid (the server's first Initial), and the
///         ServerHello fields (`serverHelloFields`). A direction whose hello failed adds "error"
///         (a `QUICError.name`).
/// Top level, as the QUIC record is specified: "scid" (the client's), and from the ClientHello "sni",
/// "alpn" and "ja4" — the same values as in "client", absent while no ClientHello was parsed.
///
/// Packets: every long-header packet of a datagram is walked (coalesced packets, RFC 9000 §12.2);
/// Initial packets are decrypted until both hellos are parsed; 0-RTT, Handshake, Retry,
/// version-negotiation and short-header packets are counted. A Retry (RFC 9000 §17.2.5) makes
/// the client start over with the Retry's Source Connection ID as new key input: once a client
/// Initial with such a DCID decrypts with keys from it, the attempt seen so far is written and a new
/// one begins, whose record has "retry":true. A client Initial that fails to decrypt before any has
/// succeeded, with another DCID than the keys', is tried with keys from its own DCID (a capture
/// that starts after the first Initial).
///
/// Limits: per direction, 64 KiB of CRYPTO stream and 32 disjoint fragments (`QUICCryptoStream`;
/// dropped bytes in `counters.cryptoBytesDropped`). At most `maxFlows` flows are tracked; more are
/// counted in `counters.droppedFlows`. Nothing is decrypted once both hellos are in.
///
/// Cost: per flow, keys (two HKDF derivations) and the CRYPTO buffers; per decrypted Initial, the
/// plaintext (`Data`); other packets are only walked by their headers.
public final class QUICAnalyzer {
    public typealias Endpoint = (ip: String, port: UInt16)

    public struct Counters: Sendable {
        public var datagrams = 0
        /// Long-header packets by `QUICPacketType.rawValue` (known versions).
        public var byType = [Int](repeating: 0, count: 4)
        public var shortHeader = 0
        public var versionNegotiation = 0
        /// Long-header packets of versions whose Initial protection is not known.
        public var unknownVersion = 0
        /// Initial packets decrypted.
        public var decrypted = 0
        /// New Initial keys after a Retry, a version change or a late first Initial.
        public var rekeys = 0
        public var clientHellos = 0
        public var serverHellos = 0
        public var records = 0
        /// By `QUICError.rawValue`.
        public var byError = [Int](repeating: 0, count: QUICError.allCases.count)
        public var cryptoBytesDropped = 0
        public var droppedFlows = 0
        public var errors: Int { byError.reduce(0, +) }
        public subscript(_ error: QUICError) -> Int { byError[Int(error.rawValue)] }
        public subscript(_ type: QUICPacketType) -> Int { byType[Int(type.rawValue)] }
    }

    public private(set) var counters = Counters()
    public let maxFlows: Int

    private let emit: RecordLines
    private var writer = JSONWriter()
    /// The unprotected header of the packet being opened (AEAD associated data).
    private var header: [UInt8] = []

    private enum State: Equatable {
        case reading
        case done
        case failed(QUICError)
    }

    private struct Direction {
        var keys: QUICPacketKeys? = nil
        /// Largest packet number in the Initial space (RFC 9000 §12.3), -1 before the first.
        var largest: Int64 = -1
        var decrypted = 0
        var crypto = QUICCryptoStream()
        var state = State.reading

        /// A new attempt: the hello starts over, packet numbers go on (RFC 9000 §17.2.5.3).
        mutating func restart() {
            crypto.reset()
            state = .reading
            decrypted = 0
        }
    }

    private struct Flow {
        var client: Endpoint
        var server: Endpoint
        var vlan: Int?
        var version: QUICVersion? = nil
        /// The Initial keys' input: the client's first Destination Connection ID of this attempt.
        var dcid: [UInt8]? = nil
        var clientSCID: [UInt8]? = nil
        var serverSCID: [UInt8]? = nil
        /// A Retry came since this attempt began: the client's next Initial may use new keys.
        var retrySeen = false
        /// This attempt follows a Retry.
        var retried = false
        var fromClient = Direction()
        var fromServer = Direction()
        var clientHello: TLSClientHello? = nil
        var serverHello: TLSServerHello? = nil
        var emitted = false
        var record: RecordFlow? = nil

        var finished: Bool { emitted || (fromClient.state != .reading && fromServer.state != .reading) }
    }

    private var flows: [UInt64: Flow] = [:]

    /// `lines` receives each record, its newline included, valid during the call.
    public init(maxFlows: Int = 65536, lines: @escaping RecordLines) {
        self.maxFlows = maxFlows
        self.emit = lines
        header.reserveCapacity(64)
    }

    /// Records as `String` lines (tests and tools); `lines:` hands the bytes without making a String.
    public convenience init(maxFlows: Int = 65536, emit: @escaping (String) -> Void) {
        self.init(maxFlows: maxFlows, lines: { emit(String(decoding: $0, as: UTF8.self)) })
    }


    /// Whether a datagram starts with a long header (RFC 9000 §17.2) of a version whose
    /// Initial packets this analyzer decrypts; a cheap test for routing.
    @inlinable
    public static func startsWithKnownLongHeader(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 7 && bytes[0] & 0x80 != 0 && QUICVersion.isKnown(bytes.beUInt32(at: 1))
    }

    /// `record`: the flow's shared record fields (`flow_id`, endpoints, Community ID), written in its record.
    public func open(flow: UInt64, client: Endpoint, server: Endpoint, vlan: Int?, time: Double, record: RecordFlow? = nil) {
        if flows[flow] == nil && flows.count >= maxFlows {
            counters.droppedFlows &+= 1
            return
        }
        flows[flow] = Flow(client: client, server: server, vlan: vlan)
        flows[flow]?.record = record
    }

    /// One UDP datagram of the flow.
    public func datagram(flow id: UInt64, fromClient: Bool, bytes: UnsafeRawBufferPointer, time: Double) {
        // The flow is changed where it lies in the dictionary: taking it out and putting it back copied
        // every field (a retain and a release each) and hashed the key twice per datagram.
        guard let index = flows.index(forKey: id) else { return }
        datagram(&flows.values[index], fromClient: fromClient, bytes: bytes, time: time)
    }

    private func datagram(_ flow: inout Flow, fromClient: Bool, bytes: UnsafeRawBufferPointer, time: Double) {
        counters.datagrams &+= 1
        var at = 0
        while at < bytes.count {
            // RFC 9000 §17.3: a short header runs to the end of the datagram.
            guard bytes[at] & 0x80 != 0 else {
                counters.shortHeader &+= 1
                return
            }
            let header: QUICLongHeader
            switch QUICLongHeader.parse(bytes, at: at) {
            case .success(let h): header = h
            case .failure(let error): return count(error)
            }
            guard let type = header.type else {
                if header.version == 0 { counters.versionNegotiation &+= 1 } else { counters.unknownVersion &+= 1 }
                return
            }
            counters.byType[Int(type.rawValue)] &+= 1
            switch type {
            case .initial:
                if !flow.finished {
                    initial(&flow, fromClient: fromClient, datagram: bytes, header: header, time: time)
                }
            case .retry:
                // RFC 9000 §17.2.5.2: the client's next Initial goes to a Retry's Source Connection ID.
                // Which Retry the client followed (servers may send several) shows in that Initial's DCID.
                if !fromClient && !flow.emitted { flow.retrySeen = true }
            case .zeroRTT, .handshake:
                break
            }
            at = header.end
        }
    }

    private func initial(_ flow: inout Flow, fromClient: Bool, datagram: UnsafeRawBufferPointer, header: QUICLongHeader, time: Double) {
        // A known version: `parse` set the type only then.
        guard let version = QUICVersion.known(header.version) else { return }
        let packet = datagram.slice(header.start, header.end &- header.start)
        let pnOffset = header.pnOffset &- header.start
        if fromClient {
            let dcid = datagram[header.dcid]
            if flow.dcid == nil {
                setKeys(&flow, version: version, dcid: Array(dcid))
            } else if flow.version != version {
                // A new version after version negotiation (RFC 9000 §6): new keys, same DCID possible.
                newAttempt(&flow, time: time)
                setKeys(&flow, version: version, dcid: Array(dcid))
            }
            if flow.clientSCID == nil { flow.clientSCID = Array(datagram[header.scid]) }
            // Another DCID than the keys' after a Retry, or before any client Initial decrypted (a capture
            // that missed the first one): keys from this packet's own DCID are tried if the current fail.
            let otherDCID = flow.dcid.map { !$0.elementsEqual(dcid) } ?? false
            let candidate = otherDCID && (flow.retrySeen || flow.fromClient.decrypted == 0)
            guard flow.fromClient.state == .reading || candidate else { return }
            var opened = open(packet, pnOffset: pnOffset, keys: flow.fromClient.keys, direction: &flow.fromClient)
            if candidate, case .failure(.decryptFailed) = opened {
                let fresh = QUICInitialProtection.keys(version: version, dcid: Array(dcid))
                opened = open(packet, pnOffset: pnOffset, keys: fresh.client, direction: &flow.fromClient)
                if case .success = opened {
                    if flow.retrySeen {
                        newAttempt(&flow, time: time)
                        flow.retried = true
                        flow.fromClient.decrypted = 1
                    }
                    setKeys(&flow, version: version, dcid: Array(dcid), keys: fresh)
                }
            }
            guard case .success(let payload) = opened else {
                if case .failure(let error) = opened { count(error) }
                return
            }
            guard flow.fromClient.state == .reading else { return }
            frames(payload, direction: &flow.fromClient)
            settle(&flow, client: true)
        } else {
            if flow.serverSCID == nil { flow.serverSCID = Array(datagram[header.scid]) }
            guard flow.fromServer.state == .reading else { return }
            switch open(packet, pnOffset: pnOffset, keys: flow.fromServer.keys, direction: &flow.fromServer) {
            case .success(let payload): frames(payload, direction: &flow.fromServer)
            case .failure(let error): return count(error)
            }
            settle(&flow, client: false)
        }
        if flow.clientHello != nil && flow.serverHello != nil && !flow.emitted {
            write(flow, time: time)
            flow.emitted = true
        }
    }

    private func setKeys(_ flow: inout Flow, version: QUICVersion, dcid: [UInt8],
                         keys: (client: QUICPacketKeys, server: QUICPacketKeys)? = nil) {
        if flow.dcid != nil { counters.rekeys &+= 1 }
        let keys = keys ?? QUICInitialProtection.keys(version: version, dcid: dcid)
        flow.version = version
        flow.dcid = dcid
        flow.fromClient.keys = keys.client
        flow.fromServer.keys = keys.server
    }

    /// Writes what the attempt so far found and clears it.
    private func newAttempt(_ flow: inout Flow, time: Double) {
        if !flow.emitted && (flow.clientHello != nil || flow.serverHello != nil) { write(flow, time: time) }
        flow.retrySeen = false
        flow.serverSCID = nil
        flow.clientHello = nil
        flow.serverHello = nil
        flow.fromClient.restart()
        flow.fromServer.restart()
    }

    /// Decrypts in the direction's packet number space; the caller counts a failure.
    private func open(_ packet: UnsafeRawBufferPointer, pnOffset: Int, keys: QUICPacketKeys?, direction: inout Direction) -> Result<Data, QUICError> {
        guard let keys else { return .failure(.noKeys) }
        let result = QUICInitialProtection.open(packet: packet, pnOffset: pnOffset, keys: keys, largest: direction.largest, header: &header)
        guard case .success(let opened) = result else { return result.map { $0.payload } }
        counters.decrypted &+= 1
        direction.decrypted &+= 1
        direction.largest = max(direction.largest, opened.packetNumber)
        return .success(opened.payload)
    }

    private func frames(_ payload: Data, direction: inout Direction) {
        var summary = QUICFrames.Summary()
        var crypto = direction.crypto
        direction.crypto = QUICCryptoStream() // hand the buffer to the closure without a copy
        let before = crypto.droppedBytes
        let error = payload.withUnsafeBytes { raw in
            QUICFrames.walk(raw, summary: &summary) { offset, data in crypto.insert(offset: offset, data) }
        }
        counters.cryptoBytesDropped &+= crypto.droppedBytes &- before
        direction.crypto = crypto
        if let error { count(error) }
    }

    /// Parses the first handshake message of a direction once its CRYPTO bytes are complete.
    private func settle(_ flow: inout Flow, client: Bool) {
        var d = client ? flow.fromClient : flow.fromServer
        switch d.crypto.firstMessage {
        case .incomplete:
            return
        case .tooLarge:
            d.state = .failed(.cryptoLimit)
        case .complete(let type, let body):
            if type != (client ? 1 : 2) {
                d.state = .failed(.unexpectedMessage)
            } else {
                let parsed: Bool = d.crypto.bytes.withUnsafeBytes { raw in
                    let bytes = raw.slice(body.lowerBound, body.count)
                    if client {
                        flow.clientHello = TLSClientHello.parse(bytes)
                        return flow.clientHello != nil
                    }
                    flow.serverHello = TLSServerHello.parse(bytes)
                    return flow.serverHello != nil
                }
                d.state = parsed ? .done : .failed(.malformedHello)
            }
        }
        switch d.state {
        case .done: if client { counters.clientHellos &+= 1 } else { counters.serverHellos &+= 1 }
        case .failed(let error): count(error)
        case .reading: break
        }
        d.crypto.reset()
        if client { flow.fromClient = d } else { flow.fromServer = d }
    }

    private func count(_ error: QUICError) {
        counters.byError[Int(error.rawValue)] &+= 1
    }

    /// Writes the flow's record if it has not been written and a known version was seen.
    public func close(flow id: UInt64, time: Double = 0) {
        guard let flow = flows.removeValue(forKey: id) else { return }
        if !flow.emitted && flow.version != nil { write(flow, time: time) }
    }

    private func write(_ flow: Flow, time: Double) {
        writer.beginRecord("quic", time: time, flow: flow.record, vlan: flow.vlan)
        if let version = flow.version { writer.string("version", QUICVersion.name(version.wire)) }
        if let dcid = flow.dcid { writer.string("dcid", Self.hex(dcid)) }
        if flow.retried { writer.bool("retry", true) }
        // The specified top-level shape: the client's SCID and its ClientHello's SNI, ALPN and JA4, also kept in "client".
        if let scid = flow.clientSCID { writer.string("scid", Self.hex(scid)) }
        let ja4 = flow.clientHello.map { TLSFingerprint.ja4($0, quic: true) }
        if let hello = flow.clientHello {
            if let sni = hello.serverName { writer.string("sni", sni) }
            writer.beginArray("alpn")
            for name in hello.alpn { writer.string(nil, name) }
            writer.endArray()
            writer.string("ja4", ja4!)
        }

        writer.beginEndpoint("client", ip: flow.client.ip, port: flow.client.port)
        if let scid = flow.clientSCID { writer.string("scid", Self.hex(scid)) }
        if let hello = flow.clientHello { writer.clientHelloFields(hello, quic: true, ja4: ja4) }
        if case .failed(let error) = flow.fromClient.state { writer.string("error", error.name) }
        writer.endObject()

        writer.beginEndpoint("server", ip: flow.server.ip, port: flow.server.port)
        if let scid = flow.serverSCID { writer.string("scid", Self.hex(scid)) }
        if let hello = flow.serverHello { writer.serverHelloFields(hello) }
        if case .failed(let error) = flow.fromServer.state { writer.string("error", error.name) }
        writer.endObject()

        writer.endObject()
        counters.records &+= 1
        writer.withLine(emit)
    }

    static func hex(_ bytes: [UInt8]) -> [UInt8] { bytes.withUnsafeBytes { DNSMessageWriter.hex($0) } }
}
