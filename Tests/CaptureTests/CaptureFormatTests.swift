import Capture
import Foundation
import PacketCore
import XCTest

/// Hand-assembled pcap and pcapng files in every variant the reader claims to handle.
final class CaptureFormatTests: XCTestCase {
    let packets: [[UInt8]] = (0 ..< 5).map { i in (0 ..< (20 + i * 7)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) } }
    let times: [Int64] = [1_449_325_525_835_696_900, 1_449_325_525_835_697_000, 1_449_325_526_000_000_123, 1_700_000_000_999_999_999, 4_000_000_000_000_000_000]

    func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
    func le32(_ v: UInt32) -> [UInt8] { be32(v).reversed() }
    func u32(_ v: UInt32, _ big: Bool) -> [UInt8] { big ? be32(v) : le32(v) }
    func u16(_ v: UInt16, _ big: Bool) -> [UInt8] { big ? [UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8)] }

    func classicPcap(bigEndian big: Bool, nanoseconds: Bool, linkType: UInt32 = 1) -> [UInt8] {
        var out = u32(nanoseconds ? 0xA1B2_3C4D : 0xA1B2_C3D4, big) + u16(2, big) + u16(4, big) + u32(0, big) + u32(0, big) + u32(65535, big) + u32(linkType, big)
        for (p, t) in zip(packets, times) {
            let seconds = UInt32(truncatingIfNeeded: t / 1_000_000_000)
            let fraction = UInt32(nanoseconds ? t % 1_000_000_000 : (t % 1_000_000_000) / 1000)
            out += u32(seconds, big) + u32(fraction, big) + u32(UInt32(p.count), big) + u32(UInt32(p.count + 100), big) + p
        }
        return out
    }

    func block(_ type: UInt32, _ body: [UInt8], _ big: Bool) -> [UInt8] {
        var padded = body
        while padded.count % 4 != 0 { padded.append(0) }
        let length = UInt32(12 + padded.count)
        return u32(type, big) + u32(length, big) + padded + u32(length, big)
    }

    func shb(_ big: Bool) -> [UInt8] {
        block(0x0A0D_0D0A, u32(0x1A2B_3C4D, big) + u16(1, big) + u16(0, big) + [UInt8](repeating: 0xFF, count: 8), big)
    }

    /// An IDB with `if_tsresol` (raw option byte) and an unknown option before it.
    func idb(linkType: UInt16, tsresol: UInt8?, _ big: Bool) -> [UInt8] {
        var body = u16(linkType, big) + u16(0, big) + u32(0, big)
        body += u16(2, big) + u16(3, big) + Array("eth".utf8) + [0] // if_name, padded
        if let tsresol { body += u16(9, big) + u16(1, big) + [tsresol, 0, 0, 0] }
        body += u16(0, big) + u16(0, big)
        return block(1, body, big)
    }

    func epb(interface: UInt32, units: UInt64, packet: [UInt8], _ big: Bool) -> [UInt8] {
        block(6, u32(interface, big) + u32(UInt32(units >> 32), big) + u32(UInt32(units & 0xFFFF_FFFF), big)
              + u32(UInt32(packet.count), big) + u32(UInt32(packet.count + 100), big) + packet, big)
    }

    func readAll(_ bytes: [UInt8], viaStream: Bool = false) throws -> [(PacketRecord, [UInt8])] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-format-\(UUID().uuidString)").path
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        defer { unlink(path) }
        let reader: CaptureFileReader
        if viaStream {
            // A FIFO is not mmap-able, so this exercises the streaming window.
            let fifo = path + ".fifo"
            mkfifo(fifo, 0o600)
            defer { unlink(fifo) }
            let writer = Thread {
                let fd = open(fifo, O_WRONLY)
                bytes.withUnsafeBytes { raw in
                    var done = 0
                    while done < raw.count {
                        // Small writes so records straddle reads.
                        let n = write(fd, raw.baseAddress! + done, min(7, raw.count - done))
                        if n <= 0 { break }
                        done += n
                    }
                }
                close(fd)
            }
            writer.start()
            reader = try CaptureFileReader(path: fifo)
            XCTAssertNil(reader.totalBytes)
        } else {
            reader = try CaptureFileReader(path: path)
        }
        var out: [(PacketRecord, [UInt8])] = []
        while let r = try reader.next() { out.append((r, Array(r.bytes))) }
        return out
    }

    func checkClassic(_ records: [(PacketRecord, [UInt8])], nanoseconds: Bool, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(records.count, packets.count, file: file, line: line)
        for (i, (r, bytes)) in records.enumerated() {
            XCTAssertEqual(bytes, packets[i], file: file, line: line)
            XCTAssertEqual(r.originalLength, packets[i].count + 100, file: file, line: line)
            XCTAssertEqual(r.linkType, .ethernet, file: file, line: line)
            let expected = nanoseconds ? times[i] : times[i] / 1000 * 1000
            XCTAssertEqual(r.timestamp.nanoseconds, expected, "packet \(i)", file: file, line: line)
        }
    }

    func testClassicPcapInBothByteOrdersAndResolutions() throws {
        for big in [false, true] {
            for ns in [false, true] {
                checkClassic(try readAll(classicPcap(bigEndian: big, nanoseconds: ns)), nanoseconds: ns)
                checkClassic(try readAll(classicPcap(bigEndian: big, nanoseconds: ns), viaStream: true), nanoseconds: ns)
            }
        }
    }

    func testConcatenatedCapturesInOneStream() throws {
        let bytes = classicPcap(bigEndian: false, nanoseconds: false) + classicPcap(bigEndian: true, nanoseconds: true)
        let records = try readAll(bytes, viaStream: true)
        XCTAssertEqual(records.count, 2 * packets.count)
        XCTAssertEqual(records[packets.count].0.timestamp.nanoseconds, times[0])
    }

    func testPcapngSectionsInterfacesAndTimestampResolutions() throws {
        for big in [false, true] {
            var file = shb(big)
            file += idb(linkType: 1, tsresol: nil, big)      // µs default
            file += idb(linkType: 101, tsresol: 9, big)      // ns
            file += idb(linkType: 113, tsresol: 0x80 | 20, big) // 2^-20 s
            file += block(0x0000_0BAD, [1, 2, 3, 4], big)   // unknown block, skipped
            file += epb(interface: 0, units: UInt64(times[0] / 1000), packet: packets[0], big)
            file += epb(interface: 1, units: UInt64(times[1]), packet: packets[1], big)
            file += epb(interface: 2, units: UInt64(times[2] / 1_000_000_000) << 20 | 0x80000, packet: packets[2], big)
            // Simple Packet Block on interface 0.
            file += block(3, u32(UInt32(packets[3].count), big) + packets[3], big)
            // A second section (other byte order) resets the interfaces.
            file += shb(!big) + idb(linkType: 228, tsresol: 6, !big) + epb(interface: 0, units: UInt64(times[4] / 1000), packet: packets[4], !big)
            for stream in [false, true] {
                let records = try readAll(file, viaStream: stream)
                XCTAssertEqual(records.map(\.1), packets)
                XCTAssertEqual(records.map(\.0.linkType), [.ethernet, .raw, .linuxSLL, .ethernet, .ipv4])
                XCTAssertEqual(records.map(\.0.interfaceID), [0, 1, 2, 0, 0])
                XCTAssertEqual(records[0].0.timestamp.nanoseconds, times[0] / 1000 * 1000)
                XCTAssertEqual(records[1].0.timestamp.nanoseconds, times[1])
                XCTAssertEqual(records[2].0.timestamp.nanoseconds, times[2] / 1_000_000_000 * 1_000_000_000 + 500_000_000)
                XCTAssertEqual(records[3].0.originalLength, packets[3].count)
                XCTAssertEqual(records[4].0.timestamp.nanoseconds, times[4] / 1000 * 1000)
            }
        }
    }

    /// The inline pcap path (`nextPcapRecordQuickly`, which `CaptureFileReader.next` tries first) gives
    /// record for record what `next(_:offset:)` alone gives, on random streams of concatenated captures in
    /// both byte orders and resolutions, with records cut at a small snaplen, oversized ones, and a buffer
    /// that ends inside a record.
    func testQuickPcapPathMatchesTheGeneralPath() {
        var generator = SystemRandomNumberGenerator()
        for round in 0 ..< 200 {
            var stream: [UInt8] = []
            for _ in 0 ..< Int.random(in: 1 ... 3, using: &generator) {
                let big = Bool.random(using: &generator), ns = Bool.random(using: &generator)
                let snap = UInt32([0, 60, 65535, 300_000].randomElement(using: &generator)!)
                stream += u32(ns ? 0xA1B2_3C4D : 0xA1B2_C3D4, big) + u16(2, big) + u16(4, big) + u32(0, big) + u32(0, big) + u32(snap, big) + u32(1, big)
                for _ in 0 ..< Int.random(in: 0 ... 40, using: &generator) {
                    let length = Int.random(in: 0 ... 200, using: &generator)
                    stream += u32(UInt32.random(in: 0 ... .max, using: &generator), big) + u32(UInt32.random(in: 0 ..< 1_000_000, using: &generator), big)
                    stream += u32(UInt32(length), big) + u32(UInt32(length + Int.random(in: 0 ... 9, using: &generator)), big)
                    stream += (0 ..< length).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
                }
            }
            if round % 4 == 1 { stream = Array(stream.dropLast(Int.random(in: 1 ... 20, using: &generator))) }
            var quick = CaptureFormatParser(), general = CaptureFormatParser()
            quick.maxRecordLength = 150
            general.maxRecordLength = 150
            stream.withUnsafeBytes { buffer in
                var quickOffset = 0, generalOffset = 0, index = 0
                while true {
                    let viaQuick: CaptureFormatParser.Step
                    let at = quickOffset
                    if let record = quick.nextPcapRecordQuickly(buffer.baseAddress, count: buffer.count, offset: &quickOffset) {
                        viaQuick = .packet(record)
                    } else {
                        viaQuick = quick.next(buffer, offset: &quickOffset)
                        // The inline path leaves a whole record only to a file header before it.
                        if case .packet = viaQuick {
                            XCTAssertTrue([0xA1B2_C3D4, 0xD4C3_B2A1, 0xA1B2_3C4D, 0x4D3C_B2A1].contains(buffer.beUInt32(at: at)),
                                          "round \(round), record \(index): the inline path passed on a whole record")
                        }
                    }
                    let viaGeneral = general.next(buffer, offset: &generalOffset)
                    XCTAssertEqual(quickOffset, generalOffset, "round \(round), record \(index)")
                    switch (viaQuick, viaGeneral) {
                    case (.packet(let a), .packet(let b)):
                        XCTAssertEqual(a.timestamp, b.timestamp, "round \(round), record \(index)")
                        XCTAssertEqual(a.originalLength, b.originalLength)
                        XCTAssertEqual(a.linkType, b.linkType)
                        XCTAssertEqual(a.bytes.baseAddress, b.bytes.baseAddress)
                        XCTAssertEqual(a.bytes.count, b.bytes.count)
                        index += 1
                        continue
                    case (.needMore(let a), .needMore(let b)):
                        XCTAssertEqual(a, b)
                    case (.failure(let a, _), .failure(let b, _)):
                        XCTAssertEqual(a, b)
                    default:
                        XCTFail("round \(round), record \(index): \(viaQuick) against \(viaGeneral)")
                    }
                    break
                }
            }
        }
    }

    func testTruncatedFileKeepsEarlierPacketsAndReportsTheTail() throws {
        let bytes = Array(classicPcap(bigEndian: false, nanoseconds: false).dropLast(5))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("flowtap-trunc-\(getpid()).pcap").path
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        defer { unlink(path) }
        let reader = try CaptureFileReader(path: path)
        var n = 0
        while try reader.next() != nil { n += 1 }
        XCTAssertEqual(n, packets.count - 1)
        XCTAssertEqual(reader.truncatedTail, 16 + packets[4].count - 5)
    }

    func testCorruptInputsGiveReasonsNotTraps() throws {
        // Every prefix and a sweep of single-byte corruptions of a pcapng file.
        var file = shb(false) + idb(linkType: 1, tsresol: 9, false)
        for (p, t) in zip(packets, times) { file += epb(interface: 0, units: UInt64(t), packet: p, false) }
        for length in 0 ..< file.count {
            _ = try? readAll(Array(file[0 ..< length]))
        }
        for i in 0 ..< file.count {
            var corrupt = file
            corrupt[i] ^= 0xA5
            _ = try? readAll(corrupt)
        }
        XCTAssertThrowsError(try readAll([0xDE, 0xAD, 0xBE, 0xEF] + [UInt8](repeating: 0, count: 40))) { error in
            XCTAssertTrue("\(error)".contains("not a pcap or pcapng file"))
        }
        XCTAssertThrowsError(try readAll(Array(file[0 ..< 4]) + u32(13, false) + Array(file[8...]))) { error in
            XCTAssertTrue("\(error)".contains("block length 13"), "\(error)")
        }
    }

    func testWritersRoundTrip() throws {
        let dir = FileManager.default.temporaryDirectory
        for ns in [false, true] {
            let path = dir.appendingPathComponent("flowtap-w-\(getpid())-\(ns).pcap").path
            defer { unlink(path) }
            let w = try PcapWriter(path: path, linkType: .ethernet, nanoseconds: ns)
            for (p, t) in zip(packets, times) {
                try p.withUnsafeBytes { try w.write(timestamp: Timestamp(nanoseconds: t), originalLength: p.count + 100, bytes: $0) }
            }
            try w.flush()
            let reader = try CaptureFileReader(path: path)
            var records: [(PacketRecord, [UInt8])] = []
            while let r = try reader.next() { records.append((r, Array(r.bytes))) }
            checkClassic(records, nanoseconds: ns)
        }
        let ngPath = dir.appendingPathComponent("flowtap-w-\(getpid()).pcapng").path
        defer { unlink(ngPath) }
        let ng = try PcapngWriter(path: ngPath)
        for (p, t) in zip(packets, times) {
            try p.withUnsafeBytes { try ng.write(timestamp: Timestamp(nanoseconds: t), originalLength: p.count + 100, linkType: .ethernet, bytes: $0) }
        }
        try ng.flush()
        let reader = try CaptureFileReader(path: ngPath)
        var records: [(PacketRecord, [UInt8])] = []
        while let r = try reader.next() { records.append((r, Array(r.bytes))) }
        checkClassic(records, nanoseconds: true)
    }
}
