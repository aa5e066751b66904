import Foundation

extension ReportData {
    /// The whole report as one HTML file: styles inside, charts as inline SVG, no script and nothing
    /// loaded from elsewhere, so it opens anywhere, offline, and can be mailed as it is.
    public func html(generated: Date = Date(), version: String) -> String {
        var page = Page()
        let span = lastTime > firstTime ? lastTime - firstTime : 0
        page.head(title: "FlowTap report: " + capture.files.map { ($0 as NSString).lastPathComponent }.joined(separator: ", "))
        page.raw("<header><h1>FlowTap report</h1><p class=\"meta\">\(SVGCharts.escape(capture.files.joined(separator: ", "))) · made \(Self.dateTime(generated.timeIntervalSince1970)) by FlowTap \(version)</p></header><main>")

        // Summary
        page.section("Capture summary")
        var tiles: [(String, String)] = [
            ("Packets", Self.count(capture.packets)), ("Bytes", Self.bytes(capture.bytes)), ("Flows", Self.count(UInt64(flows))),
            ("Duration", Self.duration(span)), ("Hosts", Self.count(UInt64(hosts.entries.count) + (hosts.others.count > 0 ? 1 : 0))),
        ]
        if span > 0 {
            tiles.append(("Average rate", "\(SVGCharts.compact(Double(capture.packets) / span)) pkt/s · \(SVGCharts.compact(Double(capture.bytes) * 8 / span))b/s"))
        }
        page.raw("<div class=\"tiles\">" + tiles.map { "<div class=\"tile\"><div class=\"label\">\($0.0)</div><div class=\"value\" data-name=\"\($0.0.lowercased())\">\($0.1)</div></div>" }.joined() + "</div>")
        if firstTime.isFinite {
            page.raw("<p class=\"note\">First packet \(Self.dateTime(firstTime)), last \(Self.dateTime(lastTime)) (UTC, from the flows' own times).</p>")
        }
        page.end()

        // Timeline
        page.section("Traffic over time")
        let (start, step, packetRates, bitRates) = timeline.series(points: 240)
        page.raw("<h3>Packets per second</h3>" + SVGCharts.timeline(packetRates, start: start, step: step, unit: "", color: "#2b7bba"))
        page.raw("<h3>Bits per second</h3>" + SVGCharts.timeline(bitRates, start: start, step: step, unit: "b", color: "#e08a1e"))
        page.raw("<p class=\"note\">Packets the flow engine placed in flows, averaged over \(Self.duration(step)) bins.</p>")
        page.end()

        // Mix
        page.section("Protocols and applications")
        page.grid {
            $0.panel("Transport (bytes)", SVGCharts.bars(transports.top(8) { $0.bytes }.map { ($0.0, Double($0.1.bytes), "\(Self.count($0.1.count)) flows") }, format: { Self.bytes(UInt64($0)) }))
            $0.panel("Application (bytes, by first bytes and ports)", SVGCharts.bars(applications.top(10) { $0.bytes }.map { ($0.0, Double($0.1.bytes), "\(Self.count($0.1.count)) flows") }, format: { Self.bytes(UInt64($0)) }))
        }
        page.end()

        // Talkers and flows
        page.section("Top talkers and flows")
        page.grid {
            let rest = hosts.rest(after: 12)
            $0.panel("Hosts by bytes (sent and received)", SVGCharts.bars(hosts.top(12) { $0.bytes }.map { ($0.0, Double($0.1.bytes), "\(Self.count($0.1.count)) flows") }, format: { Self.bytes(UInt64($0)) })
                + (rest.names > 0 ? "<p class=\"note\">\(Self.count(UInt64(rest.names))) more hosts: \(Self.bytes(rest.total.bytes)) in \(Self.count(rest.total.count)) flow ends.</p>" : ""))
            $0.panel("Connection states (Zeek's conn_state)", SVGCharts.bars(connectionStates.top(10) { $0.count }.map { ($0.0 + " " + Self.stateMeaning($0.0), Double($0.1.count), "") }, format: { Self.count(UInt64($0)) }))
        }
        var table = "<table><tr><th>source</th><th>destination</th><th>proto</th><th>app</th><th class=\"n\">packets</th><th class=\"n\">bytes</th><th class=\"n\">duration</th><th>state</th></tr>"
        for flow in largest {
            table += "<tr><td>\(SVGCharts.escape(flow.source))</td><td>\(SVGCharts.escape(flow.destination))</td><td>\(flow.proto)</td><td>\(SVGCharts.escape(flow.application))</td>"
                + "<td class=\"n\">\(Self.count(flow.packets))</td><td class=\"n\">\(Self.bytes(flow.bytes))</td><td class=\"n\">\(Self.duration(flow.duration))</td><td>\(SVGCharts.escape(flow.state))</td></tr>"
        }
        page.raw("<h3>Largest flows</h3>" + (largest.isEmpty ? "<p class=\"empty\">no flows</p>" : table + "</table>"))
        page.end()

        // Distributions
        page.section("Flow sizes and durations")
        page.grid {
            $0.panel("Flow size (bytes both ways)", SVGCharts.histogram(sizes.labels, sizes.counts))
            $0.panel("Flow duration", SVGCharts.histogram(durations.labels, durations.counts))
        }
        page.end()

        page.section("TCP")
        page.grid {
            $0.panel("Handshake round-trip time (SYN → ACK)", SVGCharts.histogram(rtts.labels, rtts.counts))
            $0.panel("Retransmitted segments per connection", SVGCharts.histogram(retransmissions.labels, retransmissions.counts))
        }
        let share = tcpFlows > 0 ? 100 * Double(tcpFlowsWithRetransmissions) / Double(tcpFlows) : 0
        page.raw("<p class=\"note\">\(Self.count(UInt64(tcpFlows))) TCP connections with analysis; \(Self.count(UInt64(tcpFlowsWithRetransmissions))) (\(String(format: "%.1f", share))%) retransmitted at least once; "
            + "\(Self.count(UInt64(flowsWithMissedBytes))) flows missed \(Self.bytes(missedBytes)) of stream data (holes never seen).</p>")
        page.end()

        // Applications
        page.section("DNS, HTTP and TLS")
        page.grid {
            $0.panel("DNS names queried", SVGCharts.bars(dnsNames.top(10) { $0.count }.map { ($0.0, Double($0.1.count), "") }, format: { Self.count(UInt64($0)) }))
            $0.panel("DNS answers (rcode) and query types", SVGCharts.bars(dnsRcodes.top(6) { $0.count }.map { ($0.0, Double($0.1.count), "") }, format: { Self.count(UInt64($0)) })
                + SVGCharts.bars(dnsTypes.top(6) { $0.count }.map { ($0.0, Double($0.1.count), "") }, format: { Self.count(UInt64($0)) }))
            $0.panel("HTTP hosts", SVGCharts.bars(httpHosts.top(10) { $0.count }.map { ($0.0, Double($0.1.count), "") }, format: { Self.count(UInt64($0)) }))
            $0.panel("HTTP status codes and methods", SVGCharts.bars(httpStatus.top(8) { $0.count }.map { ($0.0, Double($0.1.count), "") }, format: { Self.count(UInt64($0)) })
                + SVGCharts.bars(httpMethods.top(6) { $0.count }.map { ($0.0, Double($0.1.count), "") }, format: { Self.count(UInt64($0)) }))
            $0.panel("TLS server names (SNI)", SVGCharts.bars(tlsNames.top(10) { $0.count }.map { ($0.0, Double($0.1.count), "") }, format: { Self.count(UInt64($0)) }))
            $0.panel("TLS versions and QUIC server names", SVGCharts.bars(tlsVersions.top(6) { $0.count }.map { ($0.0, Double($0.1.count), "") }, format: { Self.count(UInt64($0)) })
                + SVGCharts.bars(quicNames.top(6) { $0.count }.map { ($0.0, Double($0.1.count), "") }, format: { Self.count(UInt64($0)) }))
        }
        page.end()

        // Anomalies
        page.section("Anomalies and what was not analyzed")
        var rows: [(String, String)] = capture.anomalies.map { ($0.name, Self.count($0.count)) }
        rows += capture.notInFlows.filter { $0.packets > 0 }.map { ("packets not in any flow: " + $0.reason, Self.count($0.packets)) }
        if capture.fragments > 0 { rows.append(("IP fragments", Self.count(capture.fragments))) }
        if capture.flowsEvicted > 0 { rows.append(("flows ended early, flow table full", Self.count(capture.flowsEvicted))) }
        let scans = connectionStates.entries["S0"]?.count ?? 0, rejected = connectionStates.entries["REJ"]?.count ?? 0
        if scans > 0 { rows.append(("TCP connection attempts never answered (S0)", Self.count(scans))) }
        if rejected > 0 { rows.append(("TCP connection attempts rejected (REJ)", Self.count(rejected))) }
        if malformedRecords > 0 { rows.append(("records the report could not read", Self.count(UInt64(malformedRecords)))) }
        page.raw(rows.isEmpty ? "<p class=\"empty\">none</p>" : "<table class=\"narrow\"><tr><th>what</th><th class=\"n\">count</th></tr>"
            + rows.map { "<tr><td>\(SVGCharts.escape($0.0))</td><td class=\"n\">\($0.1)</td></tr>" }.joined() + "</table>")
        page.raw("<p class=\"note\">Records: " + records.top(10) { $0.count }.map { "\($0.0) \(Self.count($0.1.count))" }.joined(separator: ", ") + ".</p>")
        page.end()
        page.raw("</main></body></html>\n")
        return page.text
    }

    /// 1234567 → "1,234,567".
    static func count(_ n: UInt64) -> String {
        let digits = String(n)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return out
    }

    static func bytes(_ n: UInt64) -> String { n < 1000 ? "\(n) B" : SVGCharts.compact(Double(n)) + "B" }

    static func duration(_ s: Double) -> String {
        if s < 1 { return String(format: "%.1f ms", s * 1000) }
        if s < 120 { return String(format: "%.1f s", s) }
        if s < 7200 { return String(format: "%.1f min", s / 60) }
        return String(format: "%.1f h", s / 3600)
    }

    static func dateTime(_ t: Double) -> String { SVGCharts.utc(t, "%Y-%m-%d %H:%M:%S") }

    static func stateMeaning(_ state: String) -> String {
        switch state {
        case "SF": "(normal close)"
        case "S0": "(no answer)"
        case "REJ": "(rejected)"
        case "RSTO", "RSTR": "(reset)"
        case "S1": "(open at end)"
        case "OTH": "(midstream)"
        case "SH", "SHR": "(half open)"
        default: ""
        }
    }
}

/// The page under construction.
struct Page {
    var text = ""

    mutating func raw(_ html: String) { text += html }

    mutating func head(title: String) {
        text += """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(SVGCharts.escape(title))</title>
        <style>
        body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:#1d2733; background:#f4f6f8; }
        header { background:#1d2733; color:#fff; padding:18px 28px; }
        header h1 { margin:0; font-size:22px; } header .meta { margin:4px 0 0; color:#b9c4cf; word-break:break-all; }
        main { max-width:1180px; margin:0 auto; padding:8px 20px 40px; }
        section { background:#fff; border:1px solid #dde3e9; border-radius:8px; padding:14px 18px; margin:16px 0; }
        h2 { font-size:16px; margin:0 0 10px; } h3 { font-size:13px; color:#5b6b7b; margin:12px 0 4px; font-weight:600; }
        .tiles { display:grid; grid-template-columns:repeat(auto-fit, minmax(160px, 1fr)); gap:10px; }
        .tile { background:#f4f6f8; border-radius:6px; padding:8px 12px; } .tile .label { color:#5b6b7b; font-size:12px; text-transform:uppercase; letter-spacing:.5px; }
        .tile .value { font-size:20px; font-variant-numeric:tabular-nums; }
        .grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(540px, 1fr)); gap:14px; }
        .panel h3 { margin-top:4px; }
        svg.chart { display:block; max-width:100%; height:auto; } svg .label { font-size:12px; fill:#1d2733; } svg .value { font-size:11px; fill:#5b6b7b; }
        svg .axis { font-size:11px; fill:#5b6b7b; } svg .grid { stroke:#e6eaee; }
        table { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; font-size:13px; } table.narrow { width:auto; min-width:420px; }
        th, td { text-align:left; padding:3px 8px; border-bottom:1px solid #e6eaee; } th { color:#5b6b7b; font-weight:500; } .n { text-align:right; }
        .note { color:#5b6b7b; font-size:12px; } .empty { color:#8a96a3; font-style:italic; }
        </style></head><body>
        """
    }

    mutating func section(_ title: String) { text += "<section><h2>\(SVGCharts.escape(title))</h2>" }
    mutating func end() { text += "</section>" }
    mutating func panel(_ title: String, _ body: String) { text += "<div class=\"panel\"><h3>\(SVGCharts.escape(title))</h3>\(body)</div>" }

    mutating func grid(_ body: (inout Page) -> Void) {
        text += "<div class=\"grid\">"
        body(&self)
        text += "</div>"
    }
}
