import Capture
import TrafficGen

/// A generated capture with every impairment mixed (reordering, retransmission, overlaps, IPv4/IPv6
/// fragments, VLANs, mid-stream starts), as the shard and pipeline tests read it.
enum ImpairedCapture {
    static func write(to path: String, sessions: Int, seed: UInt64) throws {
        var options = TrafficGenerator.Options()
        options.sessions = sessions
        options.seed = seed
        options.ipv6Fraction = 0.3
        options.vlanFraction = 0.2
        options.impairments = .mix
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        _ = try TrafficGenerator(options: options).generate { try writer.write(timestamp: $0, bytes: $1) }
        try writer.flush()
    }
}
