import Capture
import PacketCore
import Wire

/// SF-TAP's cell incubator: each frame to the analysis cell of its flow.
///
/// The cell is a symmetric hash of both addresses, both ports, the IP protocol and the VLAN IDs
/// (`CellHash.flow`), spread over the cells by weight, so both directions of a flow meet on one cell.
/// Tunnels are opened as the flow engine opens them and hashed by their innermost header, so a cell's
/// `flowtap abstract` sees each inner flow whole. Every fragment of a datagram goes with its flow
/// (`FragmentCells`). Frames that are not IP (ARP, STP, LLDP) go to cell 0, or are dropped and counted
/// with `dropNonIP`. `Selection.sftap` reproduces the original's `((sport ^ dport) >> 8) % N`;
/// `Selection.fullTap` gives every frame to every cell.
public final class Incubator {
    public enum Selection: String, Sendable, CaseIterable {
        case flow, sftap, fullTap = "full-tap"
    }

    public struct Counters: Sendable {
        public init() {}
        public var frames: UInt64 = 0
        public var bytes: UInt64 = 0
        public var nonIP: UInt64 = 0
        public var nonIPDropped: UInt64 = 0
        public var fragments: UInt64 = 0
    }

    public let outputs: CellOutputs
    public let selection: Selection
    public let dropNonIP: Bool
    public private(set) var counters = Counters()
    public private(set) var fragments: FragmentCells
    let weighted: WeightedCells
    var decoder = PacketDecoder()
    var packet = DecodedPacket()
    var heldPacket = DecodedPacket()

    public init(outputs: CellOutputs, selection: Selection = .flow, dropNonIP: Bool = false, fragments: FragmentCells = FragmentCells()) {
        self.outputs = outputs
        self.selection = selection
        self.dropNonIP = dropNonIP
        self.fragments = fragments
        weighted = WeightedCells(weights: outputs.specs.map(\.weight))
        decoder.decapsulateTunnels = true
    }

    public var cellCount: Int { outputs.specs.count }

    /// One frame in.
    public func process(_ record: PacketRecord) {
        counters.frames &+= 1
        counters.bytes &+= UInt64(record.bytes.count)
        decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &packet)
        if selection == .fullTap {
            for cell in 0 ..< cellCount { send(record, to: cell) }
            return
        }
        guard packet.isIP else {
            counters.nonIP &+= 1
            if dropNonIP { counters.nonIPDropped &+= 1 } else { send(record, to: 0) }
            return
        }
        if selection == .sftap {
            send(record, to: CellHash.sftap(sourcePort: packet.sourcePort, destinationPort: packet.destinationPort, cells: cellCount))
            return
        }
        if packet.isFragment {
            counters.fragments &+= 1
            releaseExpired(now: record.timestamp)
            let key = FragmentCells.key(packet)
            if packet.fragmentOffset == 0 {
                let cell = weighted.cell(CellHash.flow(packet))
                send(record, to: cell)
                for held in fragments.first(key, cell: cell) { sendHeld(held, to: cell) }
            } else if let cell = fragments.cell(of: key) {
                send(record, to: cell)
            } else if !fragments.hold(key, record) {
                fragments.sentWithoutFirst()
                send(record, to: weighted.cell(CellHash.addressPair(packet)))
            }
            return
        }
        send(record, to: weighted.cell(CellHash.flow(packet)))
    }

    /// The end of the input: fragments still waiting for their first go to their address pair's cell;
    /// everything queued is sent.
    public func finish() {
        releaseExpired(now: nil)
        outputs.flush()
    }

    func releaseExpired(now: Timestamp?) {
        for (_, list) in fragments.expired(now: now) {
            for held in list {
                decodeHeld(held)
                sendHeld(held, to: weighted.cell(CellHash.addressPair(heldPacket)))
            }
        }
    }

    func decodeHeld(_ held: FragmentCells.Held) {
        held.bytes.withUnsafeBytes { decoder.decode($0, originalLength: held.originalLength, linkType: held.linkType, into: &heldPacket) }
    }

    func sendHeld(_ held: FragmentCells.Held, to cell: Int) {
        held.bytes.withUnsafeBytes {
            outputs.send(cell: cell, timestamp: held.timestamp, originalLength: held.originalLength, linkType: held.linkType, bytes: $0)
        }
    }

    @inline(__always)
    func send(_ record: PacketRecord, to cell: Int) {
        outputs.send(cell: cell, timestamp: record.timestamp, originalLength: record.originalLength, linkType: record.linkType, bytes: record.bytes)
    }
}
