import FlowExport
import Outputs
import PacketCore
import Wire

/// Decodes what flow exporters send — NetFlow v5, NetFlow v9 (RFC 3954), IPFIX (RFC 7011) and sFlow v5 —
/// into one JSON line per record:
///
///     {"timestamp","event_type":"netflow","type":"netflow","exporter","exporter_port","version","observation_domain","template_id"?,
///      "src_ip","src_port","dest_ip","dest_port","proto","community_id",
///      "netflow":{"pkts","bytes","start","end","tcp_flags"?,"tos"?,"input"?,"output"?,"next_hop"?,"src_as"?,"dst_as"?,
///                 "src_mask"?,"dst_mask"?,"vlan"?,"icmp_type"?,"icmp_code"?,"flow_end_reason"?,"direction"?,"biflow_direction"?}}
///     {"type":"netflow_options",…,"fields":{"<element ID>":value,…}}
///     {"timestamp","event_type":"sflow","type":"sflow",…} (see `SFlowDecoder.swift`)
///
/// Each datagram is recognised by its content (version field and lengths that agree), so any port works.
/// Templates are kept per exporter session (`TemplateKey`) in a bounded `TemplateCache`. A data set whose
/// template has not arrived is held (at most `maxHeldBytes` in all) and decoded when it comes; what cannot
/// be held, or is still held at the end, is counted, never decoded with a guess.
/// Enterprise-specific fields and unknown elements are skipped by their length; variable-length fields
/// are read by their length prefix.
public final class FlowCollector {
    public struct Counters: Sendable, Equatable {
        public var datagrams: UInt64 = 0
        public var netflow5: UInt64 = 0
        public var netflow9: UInt64 = 0
        public var ipfix: UInt64 = 0
        public var sflow: UInt64 = 0
        /// UDP datagrams that are none of the four formats.
        public var notFlowExport: UInt64 = 0
        /// Datagrams or sets whose lengths contradict themselves (the rest of the datagram is skipped).
        public var malformed: UInt64 = 0
        public var records: UInt64 = 0
        public var optionsRecords: UInt64 = 0
        public var templateRecords: UInt64 = 0
        /// Data sets held for a template, later decoded, and given up (bound reached or never announced).
        public var heldSets: UInt64 = 0
        public var heldSetsDecoded: UInt64 = 0
        public var setsWithoutTemplate: UInt64 = 0
        /// Records shorter than their template says.
        public var truncatedRecords: UInt64 = 0
        public var sflowFlowSamples: UInt64 = 0
        public var sflowCounterSamples: UInt64 = 0
        /// sFlow samples and records of formats FlowTap does not decode (skipped by their length).
        public var sflowSkipped: UInt64 = 0
        public init() {}
    }

    /// What a data set's header said about its message.
    struct MessageContext {
        var version: UInt8
        var exporter: IPAddress
        /// The exporter's address as records write it (made once per datagram).
        var exporterText: String
        var port: UInt16
        var domain: UInt32
        var exportSeconds: UInt32
        var exportNanoseconds: UInt32
        /// NetFlow v9 `sysUptime` (milliseconds).
        var uptime: UInt32
        var time: Timestamp
    }

    struct HeldSet {
        var bytes: [UInt8]
        var context: MessageContext
    }

    public internal(set) var counters = Counters()
    public var templates: TemplateCache
    public let maxHeldBytes: Int
    private var held: [TemplateKey: [HeldSet]] = [:]
    private var heldBytes = 0
    /// IPFIX exporters' boot times (`systemInitTimeMilliseconds` from options records), by session.
    var systemInit: [TemplateKey: UInt64] = [:]
    var writer = JSONWriter(capacity: 1024)
    var packetDecoder = PacketDecoder()
    var decodedPacket = DecodedPacket()
    /// Receives each record: one JSON line with its newline, valid during the call.
    let emit: (UnsafeRawBufferPointer) -> Void

    public init(templates: TemplateCache = TemplateCache(), maxHeldBytes: Int = 4 << 20, emit: @escaping (UnsafeRawBufferPointer) -> Void) {
        self.templates = templates
        self.maxHeldBytes = maxHeldBytes
        self.emit = emit
    }

    /// Decodes one UDP datagram `exporter`:`port` sent, received at `time`.
    public func collect(_ datagram: UnsafeRawBufferPointer, exporter: IPAddress, port: UInt16, time: Timestamp) {
        counters.datagrams &+= 1
        guard datagram.count >= 4 else { counters.notFlowExport &+= 1; return }
        switch datagram.beUInt16(at: 0) {
        case 5 where datagram.count >= 24 && datagram.count == 24 + 48 * Int(datagram.beUInt16(at: 2)):
            counters.netflow5 &+= 1
            netflow5(datagram, exporter: exporter, port: port, time: time)
        case 9 where datagram.count >= 20:
            counters.netflow9 &+= 1
            netflow9(datagram, exporter: exporter, port: port, time: time)
        case 10 where datagram.count >= 16 && Int(datagram.beUInt16(at: 2)) == datagram.count:
            counters.ipfix &+= 1
            ipfix(datagram, exporter: exporter, port: port, time: time)
        case 0 where datagram.beUInt32(at: 0) == 5 && datagram.count >= 28:
            let addressType = datagram.beUInt32(at: 4)
            guard addressType == 1 || addressType == 2 else { counters.notFlowExport &+= 1; return }
            counters.sflow &+= 1
            sflow(datagram, exporter: exporter, port: port, time: time)
        default:
            counters.notFlowExport &+= 1
        }
    }

    /// Gives up on every set still waiting for its template (at the end of the input).
    public func finish() {
        for (_, sets) in held { counters.setsWithoutTemplate &+= UInt64(sets.count) }
        held.removeAll()
        heldBytes = 0
    }

    /// Sets waiting for a template now.
    public var heldSetCount: Int { held.values.reduce(0) { $0 + $1.count } }

    // MARK: NetFlow v5

    private func netflow5(_ d: UnsafeRawBufferPointer, exporter: IPAddress, port: UInt16, time: Timestamp) {
        let count = Int(d.beUInt16(at: 2))
        let uptime = d.beUInt32(at: 4), secs = d.beUInt32(at: 8), nsecs = d.beUInt32(at: 12)
        let context = MessageContext(version: 5, exporter: exporter, exporterText: exporter.description, port: port, domain: UInt32(d[21]), exportSeconds: secs,
                                     exportNanoseconds: nsecs, uptime: uptime, time: time)
        let sampling = d.beUInt16(at: 22) & 0x3FFF
        for i in 0 ..< count {
            let at = 24 + 48 * i
            var f = CollectedFlow()
            f.source = IPAddress.ipv4(d, at: at)
            f.destination = IPAddress.ipv4(d, at: at + 4)
            f.hasSource = true
            f.hasDestination = true
            f.nextHop = IPAddress.ipv4(d, at: at + 8)
            f.input = UInt32(d.beUInt16(at: at + 12))
            f.output = UInt32(d.beUInt16(at: at + 14))
            f.packets = UInt64(d.beUInt32(at: at + 16))
            f.bytes = UInt64(d.beUInt32(at: at + 20))
            f.hasPackets = true
            f.hasBytes = true
            f.startUptime = d.beUInt32(at: at + 24)
            f.endUptime = d.beUInt32(at: at + 28)
            f.sourcePort = d.beUInt16(at: at + 32)
            f.destinationPort = d.beUInt16(at: at + 34)
            f.tcpFlags = UInt16(d[at + 37])
            f.ipProtocol = d[at + 38]
            f.hasProtocol = true
            f.tos = d[at + 39]
            f.sourceAS = UInt32(d.beUInt16(at: at + 40))
            f.destinationAS = UInt32(d.beUInt16(at: at + 42))
            f.sourceMask = d[at + 44]
            f.destinationMask = d[at + 45]
            if f.ipProtocol == 1 {
                // v5 exporters put ICMP type and code in the destination port.
                f.icmpTypeCode = f.destinationPort
                f.destinationPort = 0
            }
            if sampling > 0 { f.samplingInterval = UInt32(sampling) }
            writeFlow(f, context: context, templateID: nil)
        }
    }

    // MARK: NetFlow v9

    private func netflow9(_ d: UnsafeRawBufferPointer, exporter: IPAddress, port: UInt16, time: Timestamp) {
        let context = MessageContext(version: 9, exporter: exporter, exporterText: exporter.description, port: port, domain: d.beUInt32(at: 16), exportSeconds: d.beUInt32(at: 8),
                                     exportNanoseconds: 0, uptime: d.beUInt32(at: 4), time: time)
        var at = 20
        while at + 4 <= d.count {
            let id = d.beUInt16(at: at), length = Int(d.beUInt16(at: at + 2))
            guard length >= 4, at + length <= d.count else {
                // Trailing padding shorter than a set header is allowed; a lying length is not.
                if d.count - at >= 4 { counters.malformed &+= 1 }
                return
            }
            let set = UnsafeRawBufferPointer(rebasing: d[(at + 4) ..< (at + length)])
            switch id {
            case 0: templateSet(set, context: context, options: false)
            case 1: netflow9OptionsTemplateSet(set, context: context)
            case 256...: dataSet(set, templateID: id, context: context)
            default: break // 2–255 are reserved in v9
            }
            at += length
        }
    }

    // MARK: IPFIX

    private func ipfix(_ d: UnsafeRawBufferPointer, exporter: IPAddress, port: UInt16, time: Timestamp) {
        let context = MessageContext(version: 10, exporter: exporter, exporterText: exporter.description, port: port, domain: d.beUInt32(at: 12), exportSeconds: d.beUInt32(at: 4),
                                     exportNanoseconds: 0, uptime: 0, time: time)
        var at = 16
        while at + 4 <= d.count {
            let id = d.beUInt16(at: at), length = Int(d.beUInt16(at: at + 2))
            guard length >= 4, at + length <= d.count else {
                counters.malformed &+= 1
                return
            }
            let set = UnsafeRawBufferPointer(rebasing: d[(at + 4) ..< (at + length)])
            switch id {
            case 2: templateSet(set, context: context, options: false)
            case 3: templateSet(set, context: context, options: true)
            case 256...: dataSet(set, templateID: id, context: context)
            default: break // 0, 1 (NetFlow's) and 4–255 are not used in IPFIX
            }
            at += length
        }
    }

    func key(_ context: MessageContext, _ templateID: UInt16) -> TemplateKey {
        TemplateKey(exporter: context.exporter, exporterPort: context.port, domain: context.domain, templateID: templateID, version: context.version)
    }

    /// Template records (v9 flowset 0; IPFIX set 2, or 3 for options templates with a scope count).
    private func templateSet(_ s: UnsafeRawBufferPointer, context: MessageContext, options: Bool) {
        var at = 0
        let ipfix = context.version == 10
        while at + 4 <= s.count {
            let templateID = s.beUInt16(at: at), fieldCount = Int(s.beUInt16(at: at + 2))
            at += 4
            var scopeCount = 0
            if options {
                if fieldCount == 0 {
                    withdraw(templateID, context: context, options: true)
                    continue
                }
                guard at + 2 <= s.count else { counters.malformed &+= 1; return }
                scopeCount = Int(s.beUInt16(at: at))
                at += 2
                guard scopeCount >= 1, scopeCount <= fieldCount else { counters.malformed &+= 1; return }
            } else if fieldCount == 0 {
                // Set padding is zeros, so a zero ID ends the set; otherwise it is a withdrawal.
                if templateID == 0 { return }
                withdraw(templateID, context: context, options: false)
                continue
            }
            guard templateID >= 256 else { counters.malformed &+= 1; return }
            var fields: [TemplateField] = []
            fields.reserveCapacity(fieldCount)
            for _ in 0 ..< fieldCount {
                guard at + 4 <= s.count else { counters.malformed &+= 1; return }
                var id = s.beUInt16(at: at)
                let length = s.beUInt16(at: at + 2)
                at += 4
                var enterprise: UInt32 = 0
                if ipfix && id & 0x8000 != 0 {
                    guard at + 4 <= s.count else { counters.malformed &+= 1; return }
                    enterprise = s.beUInt32(at: at)
                    id &= 0x7FFF
                    at += 4
                }
                if !ipfix && length == InformationElement.variableLength { counters.malformed &+= 1; return }
                fields.append(TemplateField(id: id, length: length, enterprise: enterprise))
            }
            counters.templateRecords &+= 1
            let k = key(context, templateID)
            templates.store(k, fields: fields, scopeFieldCount: scopeCount, time: context.time)
            releaseHeld(k)
        }
    }

    private func withdraw(_ templateID: UInt16, context: MessageContext, options: Bool) {
        if context.version == 10 && (templateID == 2 || templateID == 3) {
            templates.withdrawAll(exporter: context.exporter, port: context.port, domain: context.domain, options: templateID == 3)
        } else {
            templates.withdraw(key(context, templateID))
        }
    }

    /// NetFlow v9 options templates (RFC 3954 §6.1): scope and option lengths in bytes, not counts.
    private func netflow9OptionsTemplateSet(_ s: UnsafeRawBufferPointer, context: MessageContext) {
        var at = 0
        while at + 6 <= s.count {
            let templateID = s.beUInt16(at: at), scopeLength = Int(s.beUInt16(at: at + 2)), optionLength = Int(s.beUInt16(at: at + 4))
            at += 6
            if templateID == 0 && scopeLength == 0 { return } // padding
            guard templateID >= 256, scopeLength % 4 == 0, optionLength % 4 == 0, at + scopeLength + optionLength <= s.count,
                  scopeLength + optionLength > 0 else {
                counters.malformed &+= 1
                return
            }
            var fields: [TemplateField] = []
            for i in stride(from: 0, to: scopeLength + optionLength, by: 4) {
                fields.append(TemplateField(id: s.beUInt16(at: at + i), length: s.beUInt16(at: at + i + 2), enterprise: 0))
            }
            at += scopeLength + optionLength
            counters.templateRecords &+= 1
            let k = key(context, templateID)
            // A v9 scope field counts as scope; an options template without scope still has options records.
            templates.store(k, fields: fields, scopeFieldCount: max(1, scopeLength / 4), time: context.time)
            releaseHeld(k)
        }
    }

    private func dataSet(_ s: UnsafeRawBufferPointer, templateID: UInt16, context: MessageContext) {
        let k = key(context, templateID)
        guard let template = templates.lookup(k, time: context.time) else {
            hold(s, key: k, context: context)
            return
        }
        decodeRecords(s, template: template, templateID: templateID, context: context)
    }

    private func hold(_ s: UnsafeRawBufferPointer, key: TemplateKey, context: MessageContext) {
        guard heldBytes + s.count <= maxHeldBytes else {
            counters.setsWithoutTemplate &+= 1
            return
        }
        held[key, default: []].append(HeldSet(bytes: Array(s), context: context))
        heldBytes += s.count
        counters.heldSets &+= 1
    }

    private func releaseHeld(_ k: TemplateKey) {
        guard let sets = held.removeValue(forKey: k) else { return }
        for set in sets {
            heldBytes -= set.bytes.count
            guard let template = templates.lookup(k, time: set.context.time) else { continue }
            counters.heldSetsDecoded &+= 1
            set.bytes.withUnsafeBytes { decodeRecords($0, template: template, templateID: k.templateID, context: set.context) }
        }
    }

    private func decodeRecords(_ s: UnsafeRawBufferPointer, template: ReceivedTemplate, templateID: UInt16, context: MessageContext) {
        var at = 0
        // Whatever is left that cannot hold one more record is padding.
        while s.count - at >= max(1, template.minimumRecordLength) {
            guard let next = decodeRecord(s, at: at, template: template, templateID: templateID, context: context) else {
                counters.truncatedRecords &+= 1
                return
            }
            // A template of only zero-length fields would never advance.
            if next == at { return }
            at = next
        }
    }

    /// One data record from `at`; returns where the next starts, nil when the set ends inside it.
    private func decodeRecord(_ s: UnsafeRawBufferPointer, at start: Int, template: ReceivedTemplate, templateID: UInt16,
                              context: MessageContext) -> Int? {
        var at = start
        var f = CollectedFlow()
        var options: [(id: UInt16, enterprise: UInt32, offset: Int, length: Int)] = []
        for field in template.fields {
            var length = Int(field.length)
            if field.length == InformationElement.variableLength {
                guard at < s.count else { return nil }
                length = Int(s[at])
                at += 1
                if length == 255 {
                    guard at + 2 <= s.count else { return nil }
                    length = Int(s.beUInt16(at: at))
                    at += 2
                }
            }
            guard at + length <= s.count else { return nil }
            if template.isOptions {
                options.append((field.id, field.enterprise, at, length))
            } else if field.enterprise == 0 {
                read(field.id, s, at: at, length: length, into: &f)
            }
            at += length
        }
        if template.isOptions {
            writeOptions(s, fields: options, templateID: templateID, context: context)
        } else {
            writeFlow(f, context: context, templateID: templateID)
        }
        return at
    }

    @inline(__always)
    private func read(_ id: UInt16, _ s: UnsafeRawBufferPointer, at: Int, length: Int, into f: inout CollectedFlow) {
        typealias IE = InformationElement
        let value = unsignedValue(s, at: at, length: length)
        switch id {
        case IE.sourceIPv4Address, IE.sourceIPv6Address:
            if let a = addressValue(s, at: at, length: length) { f.source = a; f.hasSource = true }
        case IE.destinationIPv4Address, IE.destinationIPv6Address:
            if let a = addressValue(s, at: at, length: length) { f.destination = a; f.hasDestination = true }
        case IE.ipNextHopIPv4Address, 62:
            f.nextHop = addressValue(s, at: at, length: length)
        case IE.sourceTransportPort: f.sourcePort = UInt16(truncatingIfNeeded: value ?? 0)
        case IE.destinationTransportPort: f.destinationPort = UInt16(truncatingIfNeeded: value ?? 0)
        case IE.protocolIdentifier:
            if let v = value { f.ipProtocol = UInt8(truncatingIfNeeded: v); f.hasProtocol = true }
        case IE.packetDeltaCount, 86: // packetTotalCount
            if let v = value { f.packets = v; f.hasPackets = true }
        case IE.octetDeltaCount, 85: // octetTotalCount
            if let v = value { f.bytes = v; f.hasBytes = true }
        case IE.tcpControlBits: f.tcpFlags = value.map { UInt16(truncatingIfNeeded: $0) }
        case IE.ipClassOfService: f.tos = value.map { UInt8(truncatingIfNeeded: $0) }
        case IE.ingressInterface: f.input = value.map { UInt32(truncatingIfNeeded: $0) }
        case IE.egressInterface: f.output = value.map { UInt32(truncatingIfNeeded: $0) }
        case IE.bgpSourceAsNumber: f.sourceAS = value.map { UInt32(truncatingIfNeeded: $0) }
        case IE.bgpDestinationAsNumber: f.destinationAS = value.map { UInt32(truncatingIfNeeded: $0) }
        case IE.sourceIPv4PrefixLength, 29: f.sourceMask = value.map { UInt8(truncatingIfNeeded: $0) }
        case IE.destinationIPv4PrefixLength, 30: f.destinationMask = value.map { UInt8(truncatingIfNeeded: $0) }
        case IE.vlanId: f.vlan = value.map { UInt16(truncatingIfNeeded: $0) }
        case IE.icmpTypeCodeIPv4, IE.icmpTypeCodeIPv6: f.icmpTypeCode = value.map { UInt16(truncatingIfNeeded: $0) }
        case IE.flowEndReason: f.endReason = value.map { UInt8(truncatingIfNeeded: $0) }
        case IE.flowDirection: f.direction = value.map { UInt8(truncatingIfNeeded: $0) }
        case IE.biflowDirection: f.biflowDirection = value.map { UInt8(truncatingIfNeeded: $0) }
        case 34, 305: f.samplingInterval = value.map { UInt32(truncatingIfNeeded: $0) } // samplingInterval, samplingPacketInterval
        case IE.flowStartSysUpTime: f.startUptime = value.map { UInt32(truncatingIfNeeded: $0) }
        case IE.flowEndSysUpTime: f.endUptime = value.map { UInt32(truncatingIfNeeded: $0) }
        case IE.flowStartSeconds: f.start = value.map { Timestamp(nanoseconds: Int64(clamping: $0) &* 1_000_000_000) }
        case IE.flowEndSeconds: f.end = value.map { Timestamp(nanoseconds: Int64(clamping: $0) &* 1_000_000_000) }
        case IE.flowStartMilliseconds: f.start = value.map { Timestamp(nanoseconds: Int64(clamping: $0) &* 1_000_000) }
        case IE.flowEndMilliseconds: f.end = value.map { Timestamp(nanoseconds: Int64(clamping: $0) &* 1_000_000) }
        case IE.flowStartMicroseconds where length == 8: f.start = value.map { ntpTimestamp($0, microseconds: true) }
        case IE.flowEndMicroseconds where length == 8: f.end = value.map { ntpTimestamp($0, microseconds: true) }
        case IE.flowStartNanoseconds where length == 8: f.start = value.map { ntpTimestamp($0, microseconds: false) }
        case IE.flowEndNanoseconds where length == 8: f.end = value.map { ntpTimestamp($0, microseconds: false) }
        case 158: f.startDelta = value.map { UInt32(truncatingIfNeeded: $0) } // flowStartDeltaMicroseconds
        case 159: f.endDelta = value.map { UInt32(truncatingIfNeeded: $0) }
        default: break
        }
    }
}
