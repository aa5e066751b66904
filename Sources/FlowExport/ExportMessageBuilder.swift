import PacketCore

/// Builds export datagrams from flow records: IPFIX (RFC 7011), NetFlow v9 (RFC 3954) or NetFlow v5.
///
/// Records are unidirectional (one per direction of a connection, see `ExportedFlow`); RFC 5103's
/// biflows are not used because NetFlow v5/v9 cannot carry them and common collectors (nfdump)
/// store one direction per record. IPFIX and v9 messages hold an IPv4 data set (template 256) and
/// an IPv6 one (template 257); templates go in the first message and again every
/// `templateRefreshPackets` messages or `templateRefreshSeconds` of export time (RFC 7011 §8.4 for UDP).
/// NetFlow v5 carries IPv4 only, 30 records per datagram; IPv6 flows are counted in `unexportable`.
///
/// Time: the exporter's clock is the flows' clock (capture time when reading files). NetFlow's
/// `sysUptime` counts from `boot`, the first packet the exporter was told of.
public struct ExportMessageBuilder {
    public struct Counters: Sendable, Equatable {
        public var records: UInt64 = 0
        public var messages: UInt64 = 0
        public var templateMessages: UInt64 = 0
        /// Records the format cannot carry (IPv6 in NetFlow v5).
        public var unexportable: UInt64 = 0
        public init() {}
    }

    public static let ipv4Template: UInt16 = 256
    public static let ipv6Template: UInt16 = 257

    public let destination: ExportDestination
    public private(set) var counters = Counters()
    /// The exporter's start: NetFlow `sysUptime` 0.
    public var boot: Timestamp?

    private var pending: [ExportedFlow] = []
    /// When the message being filled got its first record (export time).
    private var pendingSince = Timestamp.zero
    /// A message waits at most this long for more records (export time), so a quiet link still reports.
    public var maxDelay: Int64 = 1_000_000_000
    private var pendingIPv4 = 0
    private var pendingIPv6 = 0
    private var buffer: ExportBuffer
    /// Whether the message being filled starts with templates (decided by its first record).
    private var pendingTemplates = false
    private var messagesSinceTemplates = Int.max
    private var lastTemplates = Timestamp.zero
    /// IPFIX: data records sent so far; v9: messages sent so far; v5: flows sent so far (each format's sequence rule).
    private var sequence: UInt32 = 0

    /// The two templates' layouts and sizes, made once: `add` sizes every record against them.
    private let layouts: (v4: TemplateLayout, v6: TemplateLayout)
    private let recordLengths: (v4: Int, v6: Int)
    private let templateSetLength: Int

    public init(destination: ExportDestination) {
        self.destination = destination
        buffer = ExportBuffer(capacity: destination.mtu)
        layouts = (Self.layout(destination.format, ipv6: false), Self.layout(destination.format, ipv6: true))
        recordLengths = (layouts.v4.recordLength, layouts.v6.recordLength)
        // Set header, then per template: ID, field count, 4 bytes per field.
        templateSetLength = 4 + (4 + 4 * layouts.v4.fields.count) + (4 + 4 * layouts.v6.fields.count)
    }

    public static func layout(_ format: ExportDestination.Format, ipv6: Bool) -> TemplateLayout {
        typealias IE = InformationElement
        let addressLength: UInt16 = ipv6 ? 16 : 4
        switch format {
        case .ipfix:
            return TemplateLayout([
                (ipv6 ? IE.sourceIPv6Address : IE.sourceIPv4Address, addressLength),
                (ipv6 ? IE.destinationIPv6Address : IE.destinationIPv4Address, addressLength),
                (IE.sourceTransportPort, 2), (IE.destinationTransportPort, 2), (IE.protocolIdentifier, 1),
                (IE.tcpControlBits, 1), (IE.packetDeltaCount, 8), (IE.octetDeltaCount, 8),
                (IE.flowStartMilliseconds, 8), (IE.flowEndMilliseconds, 8), (IE.vlanId, 2),
                (ipv6 ? IE.icmpTypeCodeIPv6 : IE.icmpTypeCodeIPv4, 2), (IE.flowEndReason, 1), (IE.biflowDirection, 1),
            ])
        case .netflow9:
            return TemplateLayout([
                (ipv6 ? IE.sourceIPv6Address : IE.sourceIPv4Address, addressLength),
                (ipv6 ? IE.destinationIPv6Address : IE.destinationIPv4Address, addressLength),
                (IE.sourceTransportPort, 2), (IE.destinationTransportPort, 2), (IE.protocolIdentifier, 1),
                (IE.tcpControlBits, 1), (IE.packetDeltaCount, 8), (IE.octetDeltaCount, 8),
                (IE.flowStartSysUpTime, 4), (IE.flowEndSysUpTime, 4), (IE.vlanId, 2),
                (IE.icmpTypeCodeIPv4, 2), (IE.ipVersion, 1),
            ])
        case .netflow5:
            return TemplateLayout([])
        }
    }

    private var headerLength: Int {
        switch destination.format {
        case .ipfix: 16
        case .netflow9: 20
        case .netflow5: 24
        }
    }


    private func templatesDue(_ now: Timestamp) -> Bool {
        messagesSinceTemplates >= destination.templateRefreshPackets
            || now.nanoseconds - lastTemplates.nanoseconds >= Int64(destination.templateRefreshSeconds) * 1_000_000_000
    }

    private static func padded(_ n: Int) -> Int { (n + 3) & ~3 }

    /// The size of a message holding `v4` and `v6` records.
    private func messageLength(v4: Int, v6: Int, templates: Bool) -> Int {
        if destination.format == .netflow5 { return 24 + 48 * v4 }
        let (l4, l6) = recordLengths
        var n = headerLength + (templates ? templateSetLength : 0)
        // v9 data flowsets are padded to four bytes (RFC 3954 §5.3); IPFIX sets need no padding.
        let padding = destination.format == .netflow9
        if v4 > 0 { n += padding ? Self.padded(4 + v4 * l4) : 4 + v4 * l4 }
        if v6 > 0 { n += padding ? Self.padded(4 + v6 * l6) : 4 + v6 * l6 }
        return n
    }

    /// Adds a record; returns the datagrams that became full (usually none, at most one).
    public mutating func add(_ flow: ExportedFlow, now: Timestamp, send: (UnsafeRawBufferPointer) -> Void) {
        if boot == nil { boot = flow.start }
        if destination.format == .netflow5 && (flow.source.isIPv6 || flow.destination.isIPv6) {
            counters.unexportable &+= 1
            return
        }
        let ipv6 = flow.source.isIPv6
        if pending.isEmpty {
            planTemplates(now)
            pendingSince = now
        }
        let fits = destination.format == .netflow5
            ? pending.count < 30
            : messageLength(v4: pendingIPv4 + (ipv6 ? 0 : 1), v6: pendingIPv6 + (ipv6 ? 1 : 0), templates: pendingTemplates) <= destination.mtu
        if !fits {
            flush(now: now, send: send)
            planTemplates(now)
            pendingSince = now
        }
        pending.append(flow)
        if ipv6 { pendingIPv6 += 1 } else { pendingIPv4 += 1 }
    }

    /// Whether the message being filled has waited `maxDelay` for more records.
    public func due(now: Timestamp) -> Bool {
        !pending.isEmpty && now.nanoseconds - pendingSince.nanoseconds >= maxDelay
    }

    /// Sends what is pending as one datagram.
    public mutating func flush(now: Timestamp, send: (UnsafeRawBufferPointer) -> Void) {
        guard !pending.isEmpty else { return }
        buffer.removeAll()
        switch destination.format {
        case .ipfix: encodeIPFIX(now: now)
        case .netflow9: encodeNetFlow9(now: now)
        case .netflow5: encodeNetFlow5(now: now)
        }
        counters.records &+= UInt64(pending.count)
        counters.messages &+= 1
        pending.removeAll(keepingCapacity: true)
        pendingIPv4 = 0
        pendingIPv6 = 0
        buffer.bytes.withUnsafeBytes { send($0) }
    }

    private func uptime(_ t: Timestamp) -> UInt32 {
        let ms = (t.nanoseconds - (boot ?? t).nanoseconds) / 1_000_000
        return UInt32(truncatingIfNeeded: max(0, ms))
    }

    private static func milliseconds(_ t: Timestamp) -> UInt64 { UInt64(max(0, t.nanoseconds / 1_000_000)) }

    /// Decides, at a message's first record, whether it carries templates; the refresh interval counts from here.
    private mutating func planTemplates(_ now: Timestamp) {
        pendingTemplates = destination.format != .netflow5 && templatesDue(now)
        if pendingTemplates { lastTemplates = now }
    }

    private mutating func writeTemplates(now: Timestamp, setID: UInt16) {
        let start = buffer.count
        buffer.u16(setID)
        buffer.u16(0)
        for (id, ipv6) in [(Self.ipv4Template, false), (Self.ipv6Template, true)] {
            let layout = ipv6 ? layouts.v6 : layouts.v4
            buffer.u16(id)
            buffer.u16(UInt16(layout.fields.count))
            for field in layout.fields {
                buffer.u16(field.id)
                buffer.u16(field.length)
            }
        }
        buffer.set16(UInt16(buffer.count - start), at: start + 2)
        messagesSinceTemplates = 0
        counters.templateMessages &+= 1
    }

    private mutating func writeDataSets(ipfix: Bool) {
        for ipv6 in [false, true] where (ipv6 ? pendingIPv6 : pendingIPv4) > 0 {
            let start = buffer.count
            buffer.u16(ipv6 ? Self.ipv6Template : Self.ipv4Template)
            buffer.u16(0)
            for flow in pending where flow.source.isIPv6 == ipv6 {
                buffer.address(flow.source)
                buffer.address(flow.destination)
                buffer.u16(flow.sourcePort)
                buffer.u16(flow.destinationPort)
                buffer.u8(flow.ipProtocol)
                buffer.u8(flow.tcpFlags)
                buffer.u64(flow.packets)
                buffer.u64(flow.bytes)
                if ipfix {
                    buffer.u64(Self.milliseconds(flow.start))
                    buffer.u64(Self.milliseconds(flow.end))
                } else {
                    buffer.u32(uptime(flow.start))
                    buffer.u32(uptime(flow.end))
                }
                buffer.u16(flow.vlan)
                buffer.u16(flow.icmpTypeCode)
                if ipfix {
                    buffer.u8(flow.endReason.rawValue)
                    buffer.u8(flow.fromOriginator ? 1 : 2)
                } else {
                    buffer.u8(ipv6 ? 6 : 4)
                }
            }
            if !ipfix { buffer.zeros(Self.padded(buffer.count - start) - (buffer.count - start)) }
            buffer.set16(UInt16(buffer.count - start), at: start + 2)
        }
    }

    private mutating func encodeIPFIX(now: Timestamp) {
        let templates = pendingTemplates
        buffer.u16(10)
        buffer.u16(0)
        buffer.u32(UInt32(truncatingIfNeeded: max(0, now.seconds)))
        buffer.u32(sequence)
        buffer.u32(destination.domain)
        if templates { writeTemplates(now: now, setID: 2) }
        writeDataSets(ipfix: true)
        buffer.set16(UInt16(buffer.count), at: 2)
        // RFC 7011 §3.1: the sequence counts data records sent before this message.
        sequence &+= UInt32(truncatingIfNeeded: pending.count)
        messagesSinceTemplates &+= 1
    }

    private mutating func encodeNetFlow9(now: Timestamp) {
        let templates = pendingTemplates
        buffer.u16(9)
        // Count: every record in the packet, template records included (RFC 3954 §5.1).
        buffer.u16(UInt16(pending.count + (templates ? 2 : 0)))
        buffer.u32(uptime(now))
        buffer.u32(UInt32(truncatingIfNeeded: max(0, now.seconds)))
        // RFC 3954 §5.1: the sequence counts export packets sent before this one.
        buffer.u32(sequence)
        buffer.u32(destination.domain)
        if templates { writeTemplates(now: now, setID: 0) }
        writeDataSets(ipfix: false)
        sequence &+= 1
        messagesSinceTemplates &+= 1
    }

    private mutating func encodeNetFlow5(now: Timestamp) {
        buffer.u16(5)
        buffer.u16(UInt16(pending.count))
        buffer.u32(uptime(now))
        buffer.u32(UInt32(truncatingIfNeeded: max(0, now.seconds)))
        buffer.u32(UInt32(truncatingIfNeeded: max(0, now.subsecondNanoseconds)))
        // The sequence counts flows sent before this packet.
        buffer.u32(sequence)
        buffer.u8(0) // engine type
        buffer.u8(UInt8(truncatingIfNeeded: destination.domain))
        buffer.u16(0) // not sampled
        for flow in pending {
            buffer.address(flow.source)
            buffer.address(flow.destination)
            buffer.u32(0) // next hop
            buffer.u16(0) // input interface
            buffer.u16(0) // output interface
            buffer.u32(UInt32(clamping: flow.packets))
            buffer.u32(UInt32(clamping: flow.bytes))
            buffer.u32(uptime(flow.start))
            buffer.u32(uptime(flow.end))
            buffer.u16(flow.sourcePort)
            // ICMP type and code travel in the destination port, as every v5 exporter writes them.
            buffer.u16(flow.isICMP ? flow.icmpTypeCode : flow.destinationPort)
            buffer.u8(0)
            buffer.u8(flow.tcpFlags)
            buffer.u8(flow.ipProtocol)
            buffer.u8(0) // ToS
            buffer.zeros(4) // source and destination AS
            buffer.zeros(2) // prefix lengths
            buffer.zeros(2)
        }
        sequence &+= UInt32(truncatingIfNeeded: pending.count)
    }
}
