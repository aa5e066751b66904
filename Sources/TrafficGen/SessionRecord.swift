import PacketCore

extension TrafficGenerator {
    /// What a session put on the wire and what its receivers should deliver:
    /// one line of the expected-streams manifest.
    ///
    /// Expected data is always everything each side sent, because every
    /// impairment keeps it recoverable:
    /// - TCP: `stream(fromClient:)` is the byte stream the peer's application
    ///   reads, whatever the segmentation, order, duplicates, overlaps (always
    ///   the same bytes) or fragmentation. Sessions without a handshake
    ///   (`no_syn`, `no_syn_synack`, `no_handshake`) still expect every byte: the
    ///   first data segment of each direction arrives before any later one, so a
    ///   receiver that picks the flow up mid-stream loses nothing. `rst` and
    ///   `no_fin` sessions end only after all data is acknowledged.
    /// - UDP: `datagrams(fromClient:)` in arrival order (UDP is never reordered).
    /// - ICMP: the echo request (client) and reply (server) payloads, after the
    ///   8-byte ICMP header, in order.
    public struct SessionRecord: Sendable {
        public var session: Session
        /// What was done to the session, in `Impairment.allCases` order.
        public var impairments: [Impairment]
        /// Frames in the capture (each IP fragment counts).
        public var packets: Int
        /// Generated times of the first and last frame (a microsecond pcap keeps them truncated).
        public var firstPacket: Timestamp
        public var lastPacket: Timestamp

        public var id: Int { session.id }
        public var transport: Transport { session.kind.transport }

        /// The messages one side sent, in order: TCP application writes, UDP
        /// datagrams, or ICMP echo payloads.
        public func datagrams(fromClient: Bool) -> [[UInt8]] {
            session.messages.filter { $0.fromClient == fromClient }.map(\.bytes)
        }

        /// Everything one side sent, concatenated: for TCP, what the peer's
        /// application reads.
        public func stream(fromClient: Bool) -> [UInt8] {
            var out: [UInt8] = []
            for message in session.messages where message.fromClient == fromClient { out += message.bytes }
            return out
        }

        /// The manifest line (no trailing newline):
        ///
        ///     {"id":0,"kind":"http","l3":"ipv4","l4":"tcp",
        ///      "client":{"ip":"10.0.0.2","port":40001},"server":{"ip":"198.51.100.7","port":80},
        ///      "vlan":null,"icmp_id":null,"impairments":["reorder","no_fin"],
        ///      "packets":23,"first_ns":…,"last_ns":…,
        ///      "client_bytes":78,"server_bytes":5231,"client_sha256":"…","server_sha256":"…",
        ///      "client_datagrams":null,"server_datagrams":null}
        ///
        /// `*_bytes` and `*_sha256` cover the concatenation of everything that
        /// side sent (SHA-256 of zero bytes when it sent nothing). For UDP and
        /// ICMP, `*_datagrams` lists each datagram's length so boundaries can be
        /// checked too; it is null for TCP. ICMP has ports 0 and the echo
        /// identifier in `icmp_id`.
        public func jsonLine() -> String {
            let s = session
            let icmp = s.kind.transport == .icmp
            var line = "{\"id\":\(s.id),\"kind\":\"\(s.kind.rawValue)\",\"l3\":\"\(s.client.isIPv6 ? "ipv6" : "ipv4")\","
            line += "\"l4\":\"\(s.kind.transport.rawValue)\","
            line += "\"client\":{\"ip\":\"\(s.client)\",\"port\":\(icmp ? 0 : s.clientPort)},"
            line += "\"server\":{\"ip\":\"\(s.server)\",\"port\":\(icmp ? 0 : s.serverPort)},"
            line += "\"vlan\":\(s.vlan.map { String($0) } ?? "null"),\"icmp_id\":\(icmp ? String(s.clientPort) : "null"),"
            line += "\"impairments\":[\(impairments.map { "\"\($0.rawValue)\"" }.joined(separator: ","))],"
            line += "\"packets\":\(packets),\"first_ns\":\(firstPacket.nanoseconds),\"last_ns\":\(lastPacket.nanoseconds),"
            let client = stream(fromClient: true), server = stream(fromClient: false)
            line += "\"client_bytes\":\(client.count),\"server_bytes\":\(server.count),"
            line += "\"client_sha256\":\"\(SHA256.hex(client))\",\"server_sha256\":\"\(SHA256.hex(server))\","
            func lengths(_ fromClient: Bool) -> String {
                s.kind.transport == .tcp ? "null" : "[" + datagrams(fromClient: fromClient).map { String($0.count) }.joined(separator: ",") + "]"
            }
            line += "\"client_datagrams\":\(lengths(true)),\"server_datagrams\":\(lengths(false))}"
            return line
        }
    }
}
