import CLibpcap
import Capture
import Foundation
import PacketCore
import TestSupport
import XCTest

/// FlowTap's pcap/pcapng reader against libpcap's `pcap_next_ex` on every
/// capture in the corpus: packet count, link type, lengths, timestamp and bytes.
final class LibpcapReaderDifferentialTests: XCTestCase {
    struct LibpcapPacket {
        var microseconds: Int64
        var captured: Int
        var original: Int
        var bytes: [UInt8]
    }

    /// Every packet libpcap reads, and whether it stopped with an error.
    func libpcapRead(_ path: String) -> (packets: [LibpcapPacket], linkType: Int32, failed: Bool)? {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_MICRO), &errorBuffer) else { return nil }
        defer { pcap_close(handle) }
        var out: [LibpcapPacket] = []
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        var status: Int32 = 0
        while true {
            status = pcap_next_ex(handle, &header, &data)
            guard status == 1, let h = header?.pointee, let data else { break }
            out.append(LibpcapPacket(
                microseconds: Int64(h.ts.tv_sec) * 1_000_000 + Int64(h.ts.tv_usec), captured: Int(h.caplen), original: Int(h.len),
                bytes: Array(UnsafeBufferPointer(start: data, count: Int(h.caplen)))))
        }
        return (out, pcap_datalink(handle), status == PCAP_ERROR)
    }

    func testReaderAgreesWithLibpcapOnTheCorpus() throws {
        let root = try Corpus.require(".")
        let names = ((FileManager.default.enumerator(atPath: root.path)?.allObjects as? [String]) ?? [])
            .filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
        var filesCompared = 0, packetsCompared = 0, bothRejected = 0
        var disagreements: [String] = []
        for name in names {
            let path = root.appendingPathComponent(name).path
            let theirs = libpcapRead(path)
            var ours: [PacketRecord] = []
            var ourCopies: [[UInt8]] = []
            var ourError: CaptureError?
            do {
                let reader = try CaptureFileReader(path: path)
                while let record = try reader.next() {
                    ours.append(record)
                    ourCopies.append(Array(record.bytes))
                }
            } catch {
                ourError = error
            }
            guard let theirs else {
                if ourError != nil || ours.isEmpty { bothRejected += 1 } else { disagreements.append("\(name): libpcap cannot open it, FlowTap read \(ours.count) packets") }
                continue
            }
            if theirs.failed || ourError != nil {
                // Both must stop at the same packet; libpcap's and FlowTap's limits on bad records differ only in wording.
                if theirs.packets.count != ours.count {
                    disagreements.append("\(name): libpcap read \(theirs.packets.count) (failed: \(theirs.failed)), FlowTap \(ours.count) (\(ourError.map { "\($0)" } ?? "no error"))")
                    continue
                }
            }
            guard theirs.packets.count == ours.count else {
                disagreements.append("\(name): libpcap \(theirs.packets.count) packets, FlowTap \(ours.count)")
                continue
            }
            filesCompared += 1
            for (i, (p, r)) in zip(theirs.packets, ours).enumerated() {
                packetsCompared += 1
                let ourMicros = r.timestamp.nanoseconds / 1000
                // Debian's libpcap 1.10 reads the 32-bit seconds and microseconds as signed; FlowTap reads them
                // unsigned, as the pcap specification (draft-ietf-opsawg-pcap §5) says. Beyond 2038 or with an
                // out-of-range fraction field the two differ by a multiple of 2^32 µs (or 2^32 ns in ns files).
                let delta = abs(p.microseconds - ourMicros)
                let nanoWrap = (delta * 1000) % (1 << 32)
                let sameTime = delta <= 1 || delta % (1 << 32) == 0 || nanoWrap < 2000 || nanoWrap > (1 << 32) - 2000
                if p.captured != r.capturedLength || p.original != r.originalLength || !sameTime || p.bytes != ourCopies[i] {
                    disagreements.append("\(name)#\(i + 1): libpcap caplen \(p.captured) len \(p.original) ts \(p.microseconds); FlowTap \(r.capturedLength) \(r.originalLength) \(ourMicros)")
                    break
                }
            }
        }
        print("reader vs libpcap: \(filesCompared) files and \(packetsCompared) packets identical; \(bothRejected) rejected by both; \(disagreements.count) disagreements")
        for d in disagreements.prefix(30) { print("  " + d) }
        XCTAssertGreaterThan(packetsCompared, 50_000)
        XCTAssertEqual(disagreements, [])
    }
}
