import Foundation
import TestSupport
import XCTest

/// The dashboard in a real browser (Debian's headless Chromium), while traffic flows.
final class DashboardBrowserTests: XCTestCase {
    static var chromium: String? { Corpus.tool("chromium") ?? Corpus.tool("chromium-browser") }

    /// Chromium runs the page's script for 9 s while captures are injected for the first 6: the page
    /// updates (several different packet counts shown), and at the end shows exactly the packet count
    /// the status API reports. A screenshot taken at 5 s, traffic still flowing, goes to
    /// FLOWTAP_SCREENSHOTS when set (the README's picture: docs/images).
    func testDashboardShowsTheStatusPacketCountAndUpdatesLive() throws {
        guard let chromium = Self.chromium else { throw OracleMissing.error("chromium not installed") }
        let fixture = try AbstractFixture(name: "dashboard")
        let captures = try (0 ..< 10).map { try fixture.capture(sessions: 150, seed: 100 + $0) }
        let total = captures.reduce(0) { $0 + $1.packets }
        let command = try RunningCommand(["abstract", "-c", fixture.config, "--stats-interval", "0"], directory: fixture.directory)
        defer { command.stop() }
        fixture.waitForSocket("pcap")

        let home = fixture.home
        let paths = captures.map(\.path)
        let feeder = Thread {
            for capture in paths {
                try? inject(capture, into: home + "/pcap")
                usleep(600_000)
            }
        }
        feeder.start()
        let png = ProcessInfo.processInfo.environment["FLOWTAP_SCREENSHOTS"].map { URL(fileURLWithPath: $0).appendingPathComponent("dashboard.png").path }
            ?? fixture.directory.appendingPathComponent("dashboard.png").path
        let state = try Browser.check("http://127.0.0.1:\(command.port)/", chromium: chromium, seconds: 9, screenshot: png, screenshotAfter: 5, height: 1250, expression: """
            JSON.stringify({packets: document.getElementById("packets").dataset.value, updates: document.body.dataset.updates,
                            distinct: document.body.dataset.distinctPackets, state: document.getElementById("state").className,
                            talkers: document.querySelectorAll("#talkers tr").length, flows: document.querySelectorAll("#topFlows tr").length})
            """)
        let api = try command.waitForStatus { ($0["packets"] as? Int) == total }
        XCTAssertEqual(api["packets"] as? Int, total)
        XCTAssertEqual((state["packets"] as? String).flatMap(Int.init), total, "the page's packet count is the API's: \(state)")
        XCTAssertGreaterThanOrEqual((state["updates"] as? String).flatMap(Int.init) ?? 0, 5, "the page polled every second: \(state)")
        XCTAssertGreaterThanOrEqual((state["distinct"] as? String).flatMap(Int.init) ?? 0, 3, "the page showed the count growing while traffic flowed: \(state)")
        XCTAssertEqual(state["state"] as? String, "live")
        XCTAssertGreaterThan(state["talkers"] as? Int ?? 0, 1, "talkers table has rows")
        XCTAssertGreaterThan(state["flows"] as? Int ?? 0, 1, "top flows table has rows")
        XCTAssertGreaterThan((try? FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0, 20_000, "a screenshot with something in it")
    }
}

/// scripts/browser-check.py: a page in headless Chromium for real seconds, then one expression's value.
enum Browser {
    static func check(_ url: String, chromium: String, seconds: Double, screenshot: String, screenshotAfter: Double? = nil, height: Int = 1000,
                      expression: String) throws -> [String: Any] {
        guard let python = Corpus.tool("python3") else { throw OracleMissing.error("python3 not installed") }
        var script = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { script.deleteLastPathComponent() }
        let path = script.appendingPathComponent("scripts/browser-check.py").path
        let (output, errors, status) = try Corpus.runCapturingErrors(python, [path, url, "--chromium", chromium, "--seconds", "\(seconds)", "--height", "\(height)",
                                                                             "--screenshot", screenshot, "--expression", expression]
                                                          + (screenshotAfter.map { ["--screenshot-after", "\($0)"] } ?? []))
        guard status == 0, let text = try JSONSerialization.jsonObject(with: Data(output.utf8), options: .fragmentsAllowed) as? String,
              let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw NSError(domain: "browser", code: Int(status), userInfo: [NSLocalizedDescriptionKey: "browser-check.py: \(output) \(errors)"])
        }
        return object
    }
}
