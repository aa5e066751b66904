import Foundation
import Reports
import TestSupport
import XCTest

/// `flowtap report` against the tools and commands it summarises, and in a real browser.
final class ReportTests: XCTestCase {
    var sample: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("samples/sample.pcap").path
    }

    /// On the bundled sample: the packet tile equals tcpdump's count, the flow tile the number of
    /// records `flows` writes, every DNS name queried, HTTP host and TLS server name in `analyze`'s
    /// records is on the page, and the page loads nothing (no script, no address). Chromium renders
    /// it: at least ten charts, and a screenshot (docs/images/report.png with FLOWTAP_SCREENSHOTS).
    func testReportAgreesWithTcpdumpFlowsAndAnalyzeAndRendersInChromium() throws {
        guard let tcpdump = Corpus.tool("tcpdump") else { throw OracleMissing.error("tcpdump not installed") }
        guard let chromium = DashboardBrowserTests.chromium else { throw OracleMissing.error("chromium not installed") }
        let flowtap = try RunningCommand.flowtap
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-report-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let html = directory.appendingPathComponent("report.html").path
        // Run from the checkout with the path a user types, so the page (and the README's picture) names the file as given.
        let root = URL(fileURLWithPath: sample).deletingLastPathComponent().deletingLastPathComponent().path
        let (_, errors, status) = try Corpus.runCapturingErrors("/bin/sh", ["-c", "cd '\(root)' && exec '\(flowtap)' report -r samples/sample.pcap -o '\(html)'"])
        XCTAssertEqual(status, 0, errors)
        let page = try String(contentsOfFile: html, encoding: .utf8)
        XCTAssertTrue(page.contains("samples/sample.pcap · made"), "the header names the capture as given")

        let (counted, _) = try Corpus.run(tcpdump, ["--count", "-r", sample])
        let packets = try XCTUnwrap(Int(counted.split(separator: " ").first ?? ""))
        let (flowRecords, _) = try Corpus.run(flowtap, ["flows", "-r", sample])
        let flows = flowRecords.split(separator: "\n").count
        let (analyzed, _) = try Corpus.run(flowtap, ["analyze", "-r", sample])
        var names: [String] = []
        for line in analyzed.split(separator: "\n") {
            let record = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            switch record["event_type"] as? String {
            case "dns" where (record["qr"] as? Int) == 0:
                names += ((record["query"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
            case "http":
                names += [((record["client"] as? [String: Any])?["header"] as? [String: Any])?["host"] as? String].compactMap { $0 }
            case "tls":
                names += [(record["client"] as? [String: Any])?["sni"] as? String].compactMap { $0 }
            default: break
            }
        }
        XCTAssertGreaterThan(names.count, 10)
        for name in Set(names) { XCTAssertTrue(page.contains(">\(name)<"), "\(name) from analyze is not on the page") }
        XCTAssertFalse(page.contains("<script"), "the report has no script")
        XCTAssertNil(page.range(of: #"(src|href)=\"?(https?:)?//"#, options: .regularExpression), "the report loads nothing from elsewhere")

        let png = ProcessInfo.processInfo.environment["FLOWTAP_SCREENSHOTS"].map { URL(fileURLWithPath: $0).appendingPathComponent("report.png").path }
            ?? directory.appendingPathComponent("report.png").path
        let state = try Browser.check("file://\(html)", chromium: chromium, seconds: 1, screenshot: png, height: 1500, expression: """
            JSON.stringify({charts: document.querySelectorAll("svg.chart").length,
                            packets: document.querySelector('[data-name="packets"]').textContent,
                            flows: document.querySelector('[data-name="flows"]').textContent})
            """)
        XCTAssertGreaterThanOrEqual(state["charts"] as? Int ?? 0, 10, "\(state)")
        XCTAssertEqual((state["packets"] as? String)?.replacingOccurrences(of: ",", with: ""), String(packets), "packets: tcpdump says \(packets)")
        XCTAssertEqual((state["flows"] as? String)?.replacingOccurrences(of: ",", with: ""), String(flows), "flows: flows writes \(flows) records")
    }

    /// Names from the wire are escaped: a server name carrying markup shows as text, never as markup.
    func testHostileNamesAreEscaped() throws {
        let data = ReportData()
        let hostile = #"{"event_type":"tls","client":{"sni":"<script>alert(1)</script>\u0007"},"server":{"version_name":"TLS 1.3\"><img src=x>"}}"#
        hostile.utf8CString.withUnsafeBytes { data.add(record: UnsafeRawBufferPointer(rebasing: $0.dropLast())) }
        "not json at all".utf8CString.withUnsafeBytes { data.add(record: UnsafeRawBufferPointer(rebasing: $0.dropLast())) }
        let page = data.html(version: "test")
        XCTAssertFalse(page.contains("<script"))
        XCTAssertFalse(page.contains("<img"))
        XCTAssertTrue(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        XCTAssertTrue(page.contains("records the report could not read"), "the unreadable line is counted on the page")
    }
}
