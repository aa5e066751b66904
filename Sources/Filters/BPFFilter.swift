import CLibpcap
import PacketCore

/// A tcpdump-syntax filter compiled by libpcap and run by libpcap's BPF interpreter.
///
/// Compilation uses `pcap_compile` on a dead handle of the packet's link type;
/// evaluation calls `bpf_filter`, libpcap's bounds-checked interpreter, which
/// returns 0 for "reject" and for any out-of-bounds load. Captures that mix
/// link types (pcapng) get one compiled program per link type, made on first use.
public final class BPFFilter {
    public let expression: String
    public let snapLength: Int
    private var programs: [(LinkType, bpf_program)] = []

    public struct CompileError: Error, CustomStringConvertible, Sendable {
        public var expression: String
        public var linkType: LinkType
        public var message: String
        public var description: String { "filter '\(expression)' (link type \(linkType)): \(message)" }
    }

    /// Compiles `expression` for `linkType` now, so a bad expression fails before any packet is read.
    public init(expression: String, linkType: LinkType, snapLength: Int = 262_144) throws(CompileError) {
        self.expression = expression
        self.snapLength = snapLength
        _ = try program(for: linkType)
    }

    deinit {
        for index in programs.indices { pcap_freecode(&programs[index].1) }
    }

    private func program(for linkType: LinkType) throws(CompileError) -> Int {
        if let index = programs.firstIndex(where: { $0.0 == linkType }) { return index }
        guard let dead = pcap_open_dead(Self.dlt(for: linkType), Int32(snapLength)) else {
            throw CompileError(expression: expression, linkType: linkType, message: "libpcap cannot open a handle for this link type")
        }
        defer { pcap_close(dead) }
        var compiled = bpf_program()
        guard pcap_compile(dead, &compiled, expression, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            throw CompileError(expression: expression, linkType: linkType, message: String(cString: pcap_geterr(dead)))
        }
        programs.append((linkType, compiled))
        return programs.count - 1
    }

    /// pcap files carry LINKTYPE_ values; `pcap_open_dead` takes the platform's DLT_ values.
    /// They differ only below 104 (pcap-common.c's table); this maps the ones FlowTap meets.
    static func dlt(for linkType: LinkType) -> Int32 {
        switch linkType.rawValue {
        case 101: 12 // LINKTYPE_RAW → DLT_RAW on Linux
        case 102: 15 // SLIP_BSDOS
        case 103: 16 // PPP_BSDOS
        default: Int32(bitPattern: linkType.rawValue)
        }
    }

    /// libpcap's return value: 0 to reject, otherwise the number of bytes to keep.
    public func verdict(bytes: UnsafeRawBufferPointer, originalLength: Int, linkType: LinkType) throws(CompileError) -> UInt32 {
        let index: Int
        if programs.count == 1 && programs[0].0 == linkType { index = 0 } else { index = try program(for: linkType) }
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            var empty: UInt8 = 0
            return bpf_filter(programs[index].1.bf_insns, &empty, UInt32(truncatingIfNeeded: originalLength), 0)
        }
        return bpf_filter(programs[index].1.bf_insns, base, UInt32(truncatingIfNeeded: originalLength), UInt32(bytes.count))
    }

    /// True when the filter keeps the packet.
    @inline(__always)
    public func matches(bytes: UnsafeRawBufferPointer, originalLength: Int, linkType: LinkType) throws(CompileError) -> Bool {
        try verdict(bytes: bytes, originalLength: originalLength, linkType: linkType) != 0
    }
}
