import FlowExport
import Outputs
import RecordModel
import PacketCore
import Wire

extension FlowCollector {
    /// The message's export time.
    func exportTime(_ c: MessageContext) -> Timestamp {
        Timestamp(seconds: Int64(c.exportSeconds), nanosecondsPart: Int64(c.exportNanoseconds))
    }

    /// A `sysUptime`-relative time: export time − (uptime − t) milliseconds. A `t` later than the uptime
    /// is either a wrapped uptime (every 2³² ms, 49.7 days) or an exporter's clock error; FlowTap reads it
    /// as nfdump does, so both collectors file a record at the same time: NetFlow v5 as a wrap (32-bit
    /// difference), v9 as a time after the export.
    func uptimeTime(_ t: UInt32, _ c: MessageContext) -> Timestamp {
        let before = c.version == 5 ? Int64(c.uptime &- t) : Int64(c.uptime) - Int64(t)
        return Timestamp(nanoseconds: exportTime(c).nanoseconds - before * 1_000_000)
    }

    func flowTime(absolute: Timestamp?, delta: UInt32?, uptime: UInt32?, _ c: MessageContext) -> Timestamp? {
        if let absolute { return absolute }
        if let delta { return Timestamp(nanoseconds: exportTime(c).nanoseconds - Int64(delta) * 1000) }
        guard let uptime else { return nil }
        if c.version == 10 {
            // IPFIX uptime times need the exporter's boot time from an options record.
            guard let boot = systemInit[key(c, 0)] else { return nil }
            return Timestamp(nanoseconds: Int64(clamping: boot) &* 1_000_000 &+ Int64(uptime) * 1_000_000)
        }
        return uptimeTime(uptime, c)
    }

    func writeHeader(type: String, _ c: MessageContext, timestamp: Timestamp, templateID: UInt16?) {
        writer.reset()
        writer.beginObject()
        writer.timestamp("timestamp", timestamp)
        writer.string("event_type", type)
        writer.string("type", type)
        writer.string("exporter", c.exporterText)
        writer.number("exporter_port", Int(c.port))
        writer.number("version", Int(c.version))
        writer.number(c.version == 10 ? "observation_domain" : c.version == 9 ? "source_id" : "engine_id", Int(c.domain))
        if let templateID { writer.number("template_id", Int(templateID)) }
    }

    func writeFlow(_ f: CollectedFlow, context c: MessageContext, templateID: UInt16?) {
        let start = flowTime(absolute: f.start, delta: f.startDelta, uptime: f.startUptime, c)
        let end = flowTime(absolute: f.end, delta: f.endDelta, uptime: f.endUptime, c)
        writeHeader(type: "netflow", c, timestamp: start ?? exportTime(c), templateID: templateID)
        if f.hasSource { writer.address("src_ip", f.source) }
        let icmp = f.ipProtocol == 1 || f.ipProtocol == 58
        if f.hasProtocol && !icmp { writer.number("src_port", Int(f.sourcePort)) }
        if f.hasDestination { writer.address("dest_ip", f.destination) }
        if f.hasProtocol && !icmp { writer.number("dest_port", Int(f.destinationPort)) }
        if f.hasProtocol { writer.string("proto", IPProtocol.name(f.ipProtocol)) }
        if f.hasSource && f.hasDestination && f.hasProtocol {
            // The Community ID of the flow the record describes (one direction of it, as exported), so a
            // collected record joins the analyzers' and flows' records of the same connection.
            let typeCode = f.icmpTypeCode ?? f.destinationPort
            writer.string("community_id", CommunityID.compute(source: f.source, sourcePort: icmp ? typeCode >> 8 : f.sourcePort,
                                                            destination: f.destination, destinationPort: icmp ? typeCode & 0xFF : f.destinationPort,
                                                            ipProtocol: f.ipProtocol))
        }
        writer.beginObject("netflow")
        if f.hasPackets { writer.number("pkts", Int(clamping: f.packets)) }
        if f.hasBytes { writer.number("bytes", Int(clamping: f.bytes)) }
        if let start { writer.timestamp("start", start) }
        if let end { writer.timestamp("end", end) }
        if let v = f.tcpFlags, f.ipProtocol == 6 { writer.number("tcp_flags", Int(v)) }
        if let v = f.tos { writer.number("tos", Int(v)) }
        if let v = f.input { writer.number("input", Int(v)) }
        if let v = f.output { writer.number("output", Int(v)) }
        if let v = f.nextHop, v != .zero { writer.address("next_hop", v) }
        if let v = f.sourceAS, v != 0 { writer.number("src_as", Int(v)) }
        if let v = f.destinationAS, v != 0 { writer.number("dst_as", Int(v)) }
        if let v = f.sourceMask, v != 0 { writer.number("src_mask", Int(v)) }
        if let v = f.destinationMask, v != 0 { writer.number("dst_mask", Int(v)) }
        if let v = f.vlan, v != 0 { writer.number("vlan", Int(v)) }
        if icmp {
            // ICMP type and code: the element, or the destination port where exporters put them.
            let typeCode = f.icmpTypeCode ?? f.destinationPort
            writer.number("icmp_type", Int(typeCode >> 8))
            writer.number("icmp_code", Int(typeCode & 0xFF))
        }
        if let v = f.endReason { writer.number("flow_end_reason", Int(v)) }
        if let v = f.direction { writer.number("direction", Int(v)) }
        if let v = f.biflowDirection { writer.number("biflow_direction", Int(v)) }
        if let v = f.samplingInterval { writer.number("sampling_interval", Int(v)) }
        writer.endObject()
        writer.endObject()
        counters.records &+= 1
        writer.withLine(emit)
    }

    /// An options record: every field by its element ID (enterprise fields as "ENTERPRISE/ID"), unsigned
    /// numbers for fields of 1–8 bytes, hex otherwise. `systemInitTimeMilliseconds` is remembered.
    func writeOptions(_ s: UnsafeRawBufferPointer, fields: [(id: UInt16, enterprise: UInt32, offset: Int, length: Int)], templateID: UInt16,
                      context c: MessageContext) {
        writeHeader(type: "netflow_options", c, timestamp: exportTime(c), templateID: templateID)
        writer.beginObject("fields")
        for field in fields {
            let name = field.enterprise == 0 ? String(field.id) : "\(field.enterprise)/\(field.id)"
            if let v = unsignedValue(s, at: field.offset, length: field.length) {
                writer.key(escaping: name)
                writer.number(nil, Int(truncatingIfNeeded: v))
                if field.id == 160 && field.enterprise == 0 && (systemInit.count < templates.capacity || systemInit[key(c, 0)] != nil) {
                    systemInit[key(c, 0)] = v
                }
            } else {
                var hex: [UInt8] = []
                hex.reserveCapacity(field.length * 2)
                for i in 0 ..< field.length {
                    hex.append(hexDigit(s[field.offset + i] >> 4))
                    hex.append(hexDigit(s[field.offset + i] & 0xF))
                }
                writer.key(escaping: name)
                writer.string(nil, bytes: hex)
            }
        }
        writer.endObject()
        writer.endObject()
        counters.optionsRecords &+= 1
        writer.withLine(emit)
    }
}
