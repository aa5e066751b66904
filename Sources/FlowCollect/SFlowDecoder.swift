import Outputs
import PacketCore
import Wire

/// sFlow version 5 (sflow.org's sflow_version_5.txt): flow samples (standard and expanded) with their
/// raw packet header decoded by FlowTap's packet decoder, and counter samples with the generic interface
/// counters. Other sample and record formats, and every enterprise's, are skipped by their length.
///
///     {"timestamp","event_type":"sflow","type":"sflow","exporter","exporter_port","version":5,"agent","sub_agent","sequence",
///      "sample_type":"flow","sample_sequence","source_id","sampling_rate","sample_pool","drops","input","output",
///      "src_ip"?,"src_port"?,"dest_ip"?,"dest_port"?,"proto"?,
///      "sflow":{"frame_length","stripped","header_protocol","header_length","vlan"?,"tcp_flags"?}}
///     {"type":"sflow",…,"sample_type":"counters","sample_sequence","source_id",
///      "sflow":{"if_index","if_type","if_speed","if_direction","if_status","if_in_octets","if_in_ucast_pkts",…}}
extension FlowCollector {
    struct SFlowHeader {
        var agent: IPAddress
        var subAgent: UInt32
        var sequence: UInt32
        var uptime: UInt32
    }

    func sflow(_ d: UnsafeRawBufferPointer, exporter: IPAddress, port: UInt16, time: Timestamp) {
        var at = 8
        let agent: IPAddress
        if d.beUInt32(at: 4) == 1 {
            agent = IPAddress.ipv4(d, at: at)
            at += 4
        } else {
            guard d.count >= 40 else { counters.malformed &+= 1; return }
            agent = IPAddress.ipv6(d, at: at)
            at += 16
        }
        guard at + 16 <= d.count else { counters.malformed &+= 1; return }
        let header = SFlowHeader(agent: agent, subAgent: d.beUInt32(at: at), sequence: d.beUInt32(at: at + 4), uptime: d.beUInt32(at: at + 8))
        let samples = d.beUInt32(at: at + 12)
        at += 16
        let context = MessageContext(version: 5, exporter: exporter, exporterText: exporter.description, port: port, domain: header.subAgent,
                                     exportSeconds: 0, exportNanoseconds: 0, uptime: header.uptime, time: time)
        var n: UInt32 = 0
        while n < samples {
            guard at + 8 <= d.count else { counters.malformed &+= 1; return }
            let format = d.beUInt32(at: at), length = Int(d.beUInt32(at: at + 4))
            guard length <= d.count - at - 8 else { counters.malformed &+= 1; return }
            let sample = UnsafeRawBufferPointer(rebasing: d[(at + 8) ..< (at + 8 + length)])
            switch format {
            case 1: flowSample(sample, expanded: false, header, context)
            case 3: flowSample(sample, expanded: true, header, context)
            case 2: counterSample(sample, expanded: false, header, context)
            case 4: counterSample(sample, expanded: true, header, context)
            default: counters.sflowSkipped &+= 1
            }
            at += 8 + length
            n += 1
        }
    }

    private func sflowHeader(_ h: SFlowHeader, _ c: MessageContext, sampleType: String, sampleSequence: UInt32, sourceID: UInt32) {
        writer.reset()
        writer.beginObject()
        writer.timestamp("timestamp", c.time)
        writer.string("event_type", "sflow")
        writer.string("type", "sflow")
        writer.string("exporter", c.exporterText)
        writer.number("exporter_port", Int(c.port))
        writer.number("version", 5)
        writer.address("agent", h.agent)
        writer.number("sub_agent", Int(h.subAgent))
        writer.number("sequence", Int(h.sequence))
        writer.string("sample_type", sampleType)
        writer.number("sample_sequence", Int(sampleSequence))
        writer.number("source_id", Int(sourceID))
    }

    private func flowSample(_ s: UnsafeRawBufferPointer, expanded: Bool, _ h: SFlowHeader, _ c: MessageContext) {
        let fixed = expanded ? 44 : 32
        guard s.count >= fixed else { counters.malformed &+= 1; return }
        let sequence = s.beUInt32(at: 0)
        let sourceID = expanded ? s.beUInt32(at: 4) << 24 | (s.beUInt32(at: 8) & 0xFF_FFFF) : s.beUInt32(at: 4)
        let o = expanded ? 12 : 8
        let rate = s.beUInt32(at: o), pool = s.beUInt32(at: o + 4), drops = s.beUInt32(at: o + 8)
        let input = expanded ? s.beUInt32(at: o + 16) : s.beUInt32(at: o + 12)
        let output = expanded ? s.beUInt32(at: o + 24) : s.beUInt32(at: o + 16)
        let records = s.beUInt32(at: fixed - 4)
        counters.sflowFlowSamples &+= 1
        sflowHeader(h, c, sampleType: "flow", sampleSequence: sequence, sourceID: sourceID)
        writer.number("sampling_rate", Int(rate))
        writer.number("sample_pool", Int(pool))
        writer.number("drops", Int(drops))
        writer.number("input", Int(input))
        writer.number("output", Int(output))
        // The raw packet header record, if any, names the flow; the object after the endpoints describes it.
        var at = fixed, n: UInt32 = 0
        var raw: (frameLength: UInt32, stripped: UInt32, protocolCode: UInt32, header: UnsafeRawBufferPointer)?
        while n < records {
            guard at + 8 <= s.count else { counters.malformed &+= 1; break }
            let format = s.beUInt32(at: at), length = Int(s.beUInt32(at: at + 4))
            guard length <= s.count - at - 8 else { counters.malformed &+= 1; break }
            if format == 1 && length >= 16 && raw == nil {
                let headerLength = Int(s.beUInt32(at: at + 20))
                if headerLength <= length - 16 {
                    raw = (s.beUInt32(at: at + 12), s.beUInt32(at: at + 16), s.beUInt32(at: at + 8),
                           UnsafeRawBufferPointer(rebasing: s[(at + 24) ..< (at + 24 + headerLength)]))
                } else {
                    counters.malformed &+= 1
                }
            } else if format != 1 {
                counters.sflowSkipped &+= 1
            }
            at += 8 + length
            n += 1
        }
        if let raw {
            let link: LinkType? = switch raw.protocolCode {
            case 1: .ethernet
            case 11: .ipv4
            case 12: .ipv6
            default: nil
            }
            if let link {
                packetDecoder.decode(raw.header, originalLength: Int(raw.frameLength), linkType: link, into: &decodedPacket)
                let p = decodedPacket
                if p.network != .none {
                    writer.address("src_ip", p.source)
                    if p.transport == .tcp || p.transport == .udp { writer.number("src_port", Int(p.sourcePort)) }
                    writer.address("dest_ip", p.destination)
                    if p.transport == .tcp || p.transport == .udp { writer.number("dest_port", Int(p.destinationPort)) }
                    writer.string("proto", IPProtocol.name(p.ipProtocol))
                }
            }
            writer.beginObject("sflow")
            writer.number("frame_length", Int(raw.frameLength))
            writer.number("stripped", Int(raw.stripped))
            writer.number("header_protocol", Int(raw.protocolCode))
            writer.number("header_length", raw.header.count)
            if link != nil {
                let p = decodedPacket
                if p.vlanDepth > 0 { writer.number("vlan", Int(p.vlanIDs[0])) }
                if p.transport == .tcp { writer.number("tcp_flags", Int(p.tcpFlags.rawValue)) }
                if p.transport == .icmp || p.transport == .icmpv6 {
                    writer.number("icmp_type", Int(p.icmpType))
                    writer.number("icmp_code", Int(p.icmpCode))
                }
            }
            writer.endObject()
        }
        writer.endObject()
        counters.records &+= 1
        writer.withLine(emit)
    }

    private func counterSample(_ s: UnsafeRawBufferPointer, expanded: Bool, _ h: SFlowHeader, _ c: MessageContext) {
        let fixed = expanded ? 16 : 12
        guard s.count >= fixed else { counters.malformed &+= 1; return }
        let sequence = s.beUInt32(at: 0)
        let sourceID = expanded ? s.beUInt32(at: 4) << 24 | (s.beUInt32(at: 8) & 0xFF_FFFF) : s.beUInt32(at: 4)
        let records = s.beUInt32(at: fixed - 4)
        counters.sflowCounterSamples &+= 1
        sflowHeader(h, c, sampleType: "counters", sampleSequence: sequence, sourceID: sourceID)
        writer.beginObject("sflow")
        var at = fixed, n: UInt32 = 0
        while n < records {
            guard at + 8 <= s.count else { counters.malformed &+= 1; break }
            let format = s.beUInt32(at: at), length = Int(s.beUInt32(at: at + 4))
            guard length <= s.count - at - 8 else { counters.malformed &+= 1; break }
            if format == 1 && length >= 88 {
                let r = at + 8
                let names32: [(StaticString, Int)] = [("if_index", 0), ("if_type", 4)]
                for (name, off) in names32 { writer.number(name, Int(s.beUInt32(at: r + off))) }
                writer.number("if_speed", Int(clamping: s.beUInt64(at: r + 8)))
                writer.number("if_direction", Int(s.beUInt32(at: r + 16)))
                writer.number("if_status", Int(s.beUInt32(at: r + 20)))
                writer.number("if_in_octets", Int(clamping: s.beUInt64(at: r + 24)))
                for (name, off): (StaticString, Int) in [("if_in_ucast_pkts", 32), ("if_in_multicast_pkts", 36), ("if_in_broadcast_pkts", 40), ("if_in_discards", 44),
                                    ("if_in_errors", 48), ("if_in_unknown_protos", 52)] {
                    writer.number(name, Int(s.beUInt32(at: r + off)))
                }
                writer.number("if_out_octets", Int(clamping: s.beUInt64(at: r + 56)))
                for (name, off): (StaticString, Int) in [("if_out_ucast_pkts", 64), ("if_out_multicast_pkts", 68), ("if_out_broadcast_pkts", 72), ("if_out_discards", 76),
                                    ("if_out_errors", 80), ("if_promiscuous_mode", 84)] {
                    writer.number(name, Int(s.beUInt32(at: r + off)))
                }
            } else {
                counters.sflowSkipped &+= 1
            }
            at += 8 + length
            n += 1
        }
        writer.endObject()
        writer.endObject()
        counters.records &+= 1
        writer.withLine(emit)
    }
}
