import Capture
import Defragment
import Foundation
import PacketCore
import TestSupport
import Wire
import XCTest

/// The Sturges/Novak overlap scenario (Suricata's `DefragSturgesNovak*Test`):
/// 17 fragments, 8 of them overlapping earlier ones, replayed from the
/// corpus captures under every policy.
final class NovakCorpusTests: XCTestCase {
    struct Expected: Decodable {
        struct Family: Decodable { let pcap: String }
        struct Fragment: Decodable {
            let label: String
            let fill: String
            let offset: Int
            let length: Int
            let mf: Int
        }
        let ipv4: Family
        let ipv6: Family
        let fragments: [Fragment]
        let expected_payload_by_policy: [String: String]
    }

    struct Record {
        var bytes: [UInt8]
        var timestamp: Timestamp
        var linkType: LinkType
    }

    func readCapture(_ path: String) throws -> [Record] {
        let reader = try CaptureFileReader(path: path)
        var records: [Record] = []
        while let record = try reader.next() {
            records.append(Record(bytes: Array(record.bytes), timestamp: record.timestamp, linkType: record.linkType))
        }
        return records
    }

    func testEveryPolicyOnBothCapturesGivesTheExpectedPayload() throws {
        let directory = try Corpus.require("defrag-novak")
        let json = try Data(contentsOf: directory.appendingPathComponent("novak_expected.json"))
        let expected = try JSONDecoder().decode(Expected.self, from: json)
        XCTAssertEqual(expected.fragments.count, 17)
        // The JSON names its policies as `OverlapPolicy` raw values do.
        for name in expected.expected_payload_by_policy.keys {
            XCTAssertNotNil(OverlapPolicy(rawValue: name), "unknown policy \(name) in the corpus")
        }
        let specs = expected.fragments.map {
            FragmentSpec(offset: $0.offset, data: Array(repeating: $0.fill.utf8.first ?? 0, count: $0.length), more: $0.mf == 1)
        }
        var agreed = 0, compared = 0
        for (family, file) in [("ipv4", expected.ipv4.pcap), ("ipv6", expected.ipv6.pcap)] {
            let records = try readCapture(directory.appendingPathComponent(file).path)
            XCTAssertEqual(records.count, specs.count, family)
            var line: [String] = []
            for policy in OverlapPolicy.allCases {
                let harness = Harness(policy: policy)
                var outcomes: [Outcome] = []
                for record in records {
                    outcomes.append(harness.feed(record.bytes, link: record.linkType, at: record.timestamp.nanoseconds))
                }
                XCTAssertEqual(Array(outcomes.dropLast()), Array(repeating: .incomplete, count: records.count - 1), "\(family) \(policy)")
                guard let datagram = outcomes.last?.datagram else {
                    XCTFail("\(family) \(policy): last fragment did not complete the datagram: \(String(describing: outcomes.last))")
                    line.append("\(policy.rawValue)=INCOMPLETE")
                    continue
                }
                // The rebuilt packet decodes cleanly as an unfragmented one.
                var decoder = PacketDecoder(verifyChecksums: true)
                var packet = DecodedPacket()
                datagram.withUnsafeBytes { _ = decoder.decode($0, originalLength: $0.count, linkType: .raw, into: &packet) }
                XCTAssertFalse(packet.isFragment, "\(family) \(policy)")
                XCTAssertEqual(packet.ipTotalLength, datagram.count, "\(family) \(policy)")
                XCTAssertEqual(packet.network, family == "ipv4" ? .ipv4 : .ipv6)
                if family == "ipv4" { XCTAssertFalse(packet.has(.ipv4BadChecksum), "\(family) \(policy)") }

                let payload = reassembledPayload(datagram)
                XCTAssertEqual(payload.count, 192)
                let text = String(decoding: payload, as: UTF8.self)
                let counters = harness.counters
                XCTAssertEqual(counters.overlaps, 8, "\(family) \(policy)")
                XCTAssertEqual(counters.overlapsWithDifferentData, 8, "\(family) \(policy)")
                XCTAssertEqual(counters.datagramsCompleted, 1)
                XCTAssertEqual(counters.datagramsHeld, 0)
                XCTAssertEqual(counters.bytesHeld, 0)
                XCTAssertEqual(counters.drops.total, 0)

                let model = ByteOwnerModel.reassemble(specs, policy: policy)
                XCTAssertEqual(model.map { String(decoding: $0, as: UTF8.self) }, text, "\(family) \(policy): differs from the per-byte model")
                if let want = expected.expected_payload_by_policy[policy.rawValue] {
                    compared += 1
                    XCTAssertEqual(text, want, "\(family) \(policy)")
                    if text == want { agreed += 1 }
                    line.append("\(policy.rawValue)=\(text == want ? "agree" : "DIFFER")")
                } else {
                    line.append("\(policy.rawValue)=\(blocks(text)) (no expectation in the corpus; matches the model: \(model == payload))")
                }
            }
            print("Novak \(family): " + line.joined(separator: " "))
        }
        print("Novak agreement: \(agreed)/\(compared) policy×capture pairs match novak_expected.json")
        XCTAssertEqual(compared, 12)
    }

    /// One letter per 8-byte block, the corpus's `expected_blocks_by_policy` notation.
    func blocks(_ text: String) -> String {
        String(text.utf8.enumerated().compactMap { $0.offset % 8 == 0 ? Character(UnicodeScalar($0.element)) : nil })
    }
}
