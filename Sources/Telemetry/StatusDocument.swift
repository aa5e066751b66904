import Outputs
import PacketCore

/// `GET /api/v1/status`: the snapshot as JSON (docs/schema/status.schema.json), with the rates the
/// history gives and the process's own use.
enum StatusDocument {
    /// Rate points sent (the dashboard's timeline); the hub keeps more.
    static let historyPoints = 600

    static func render(hub: TelemetryHub) -> [UInt8] {
        hub.noteStatusRead()
        let (snapshot, published) = hub.latest
        let history = hub.history.suffix(historyPoints)
        let usage = ProcessUsage.current()
        let now = Timestamp.wallClock().secondsDouble
        var w = JSONWriter(capacity: 16 << 10)
        w.beginObject()
        w.string("command", hub.command)
        w.string("version", FlowTapVersion.current)
        w.number("start_time", hub.startTime)
        w.number("time", now)
        w.number("uptime_seconds", now - hub.startTime)
        w.number("snapshots", published)
        w.number("packets", Int(clamping: snapshot.packets))
        w.number("bytes", Int(clamping: snapshot.bytes))
        w.number("active_flows", Int(clamping: snapshot.activeFlows))
        let rates = Array(zip(history, history.dropFirst()))
        w.beginObject("rates")
        if let last = rates.last {
            let (pps, bps) = rate(last.0, last.1)
            w.number("packets_per_second", pps)
            w.number("bits_per_second", bps)
        } else {
            w.number("packets_per_second", 0)
            w.number("bits_per_second", 0)
        }
        w.endObject()
        w.beginArray("history")
        for (a, b) in rates {
            let (pps, bps) = rate(a, b)
            w.beginObject()
            w.number("time", b.time)
            w.number("packets_per_second", pps)
            w.number("bits_per_second", bps)
            w.number("active_flows", Int(clamping: b.activeFlows))
            w.endObject()
        }
        w.endArray()
        w.beginObject("process")
        w.number("cpu_seconds", usage.cpuSeconds)
        w.number("resident_bytes", Int(usage.residentBytes))
        w.number("open_fds", Int(usage.openFileDescriptors))
        w.endObject()
        share(&w, "top_talkers", snapshot.talkers)
        share(&w, "protocols", snapshot.protocols)
        w.beginArray("top_flows")
        for flow in snapshot.topFlows {
            w.beginObject()
            w.string("a", flow.endpointA)
            w.string("b", flow.endpointB)
            w.string("proto", flow.proto)
            w.number("packets", Int(clamping: flow.packets))
            w.number("bytes", Int(clamping: flow.bytes))
            w.number("duration", flow.seconds)
            w.endObject()
        }
        w.endArray()
        w.beginArray("tables")
        for table in snapshot.tables {
            w.beginObject()
            w.string("title", table.title)
            w.beginArray("columns")
            for column in table.columns { w.string(nil, column) }
            w.endArray()
            w.beginArray("rows")
            for row in table.rows {
                w.beginArray()
                for cell in row { w.string(nil, cell) }
                w.endArray()
            }
            w.endArray()
            w.endObject()
        }
        w.endArray()
        w.beginArray("metrics")
        for sample in snapshot.metrics {
            w.beginObject()
            w.string("name", sample.name)
            w.string("type", sample.kind.rawValue)
            w.beginObject("labels")
            for label in sample.labels {
                w.key(escaping: label.name)
                w.string(nil, label.value)
            }
            w.endObject()
            w.number("value", sample.value)
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return w.bytes
    }

    static func rate(_ a: TelemetryHub.Point, _ b: TelemetryHub.Point) -> (Double, Double) {
        let dt = b.time - a.time
        guard dt > 0 else { return (0, 0) }
        let packets = b.packets >= a.packets ? Double(b.packets - a.packets) : 0
        let bytes = b.bytes >= a.bytes ? Double(b.bytes - a.bytes) : 0
        return (packets / dt, bytes * 8 / dt)
    }

    static func share(_ w: inout JSONWriter, _ key: StaticString, _ rows: [TrafficShare]) {
        w.beginArray(key)
        for row in rows {
            w.beginObject()
            w.string("name", row.name)
            w.number("packets", Int(clamping: row.packets))
            w.number("bytes", Int(clamping: row.bytes))
            w.number("flows", Int(clamping: row.flows))
            w.endObject()
        }
        w.endArray()
    }
}
