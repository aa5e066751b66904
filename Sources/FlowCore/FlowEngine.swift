import Capture
import Defragment
import Flows
import PacketCore
import Reassembly
import Wire

/// Limits and policies of the flow engine; each part is documented where it is defined.
public struct FlowEngineConfig: Sendable {
    public var table = FlowTableConfig()
    public var tcp = TCPReassemblyConfig()
    public var defragment = DefragmentConfig()
    public var verifyChecksums = false
    /// Put the outermost VLAN ID in the flow key (SF-TAP's `vlan` branch does; `master` does not).
    public var vlanInKey = true
    /// Follow IP-in-IP, GRE, VXLAN, Geneve and GTP-U tunnels: flows are the inner connections.
    public var decapsulateTunnels = true
    /// Let any TCP packet start a flow, as flow records need (every packet of a connection counted, as
    /// Zeek and Suricata count them). Off, only a SYN or data starts one (SF-TAP's events): a stray ACK,
    /// FIN or RST is counted in `tcpWithoutFlow`.
    public var tcpFlowsFromAnyPacket = false
    public init() {}
}

/// Counters of the flow engine, beside those of its parts.
public struct FlowEngineCounters: Sendable, Equatable {
    public var packets: UInt64 = 0
    /// Captured frames' original lengths, summed.
    public var bytes: UInt64 = 0
    public var nonIP: UInt64 = 0
    public var fragments: UInt64 = 0
    public var reassembledDatagrams: UInt64 = 0
    public var otherTransport: UInt64 = 0
    /// TCP packets of unknown flows that carry nothing to start a stream with (pure ACK, FIN or RST).
    public var tcpWithoutFlow: UInt64 = 0
    /// TCP packets of connections that already closed (late ACKs, retransmitted FINs), absorbed.
    public var tcpAfterClose: UInt64 = 0
    /// Packets whose transport header was missing or cut.
    public var undecodable: UInt64 = 0
    public var flowsCreated: UInt64 = 0
    /// Per `DestroyReason` raw value. Made at run time: a constant literal would be a static array that the
    /// first DESTROYED event copies (an allocation in the packet path).
    public var destroyed = [UInt64](repeating: 0, count: 4)
    public var evictions: UInt64 = 0
    public init() {}
}

/// The packet → flow → stream pipeline: decode, defragment, find the flow,
/// reassemble TCP, and hand CREATED / DATA / DESTROYED events to `Sink`.
///
/// Time is packet time throughout: idle timeouts, fragment timeouts and
/// hole timeouts follow the capture's clock, so replaying a capture fast
/// behaves like the live capture it came from. `finish()` flushes and
/// destroys every open flow (reason TIMEOUT) at the end of the input.
///
/// Timeout classes: 0 TCP, 1 UDP, 2 ICMP, 3 TCP after a FIN or RST.
///
/// A TCP connection that closed (both FINs, or an RST) is reported DESTROYED
/// at once but lingers in the table, silent, for the closing timeout (like
/// TIME_WAIT): late ACKs and retransmitted FINs are absorbed instead of
/// starting a new flow. A new SYN on the same endpoints replaces it. After an
/// RST, so does a SYN-ACK, or data from the endpoint that sent the RST: that
/// RST was not honoured (the endpoints kept talking, as in RST-injection
/// evasions). Data from the other endpoint was in flight and is absorbed.
public final class FlowEngine<Sink: FlowEventSink> {
    public let config: FlowEngineConfig
    private var decoder: PacketDecoder
    /// The decoded packet and a reassembled datagram's, decoded in place and read through pointers
    /// by the handlers below: passed by value, each packet's 288-byte struct was copied twice.
    private let packet: UnsafeMutablePointer<DecodedPacket>
    private let inner: UnsafeMutablePointer<DecodedPacket>
    // Held behind a stable pointer, like the sink: a stored struct of a class is copied (its arrays
    // retained and released) around calls the optimiser cannot prove alias-free.
    private let tcpStorage: UnsafeMutablePointer<TCPReassembler>
    public let table: FlowTable
    public var tcp: TCPReassembler { tcpStorage.pointee }
    private var reassembler: TCPReassembler {
        unsafeAddress { UnsafePointer(tcpStorage) }
        unsafeMutableAddress { tcpStorage }
    }
    public let defragmenter: Defragmenter
    public private(set) var counters = FlowEngineCounters()
    private let sinkStorage: UnsafeMutablePointer<Sink>
    /// Per slot: why a closed TCP connection lingers (`Linger.none` for open flows).
    private var lingering: [Linger] = []

    enum Linger: UInt8 {
        case none, closed, resetByFirst, resetBySecond
    }
    private var lastExpiry: Int64 = .min
    private var now = Timestamp.zero

    static var classTCP: UInt8 { 0 }
    static var classUDP: UInt8 { 1 }
    static var classICMP: UInt8 { 2 }
    static var classTCPClosing: UInt8 { 3 }

    public init(config: FlowEngineConfig = FlowEngineConfig(), sink: Sink) {
        self.config = config
        decoder = PacketDecoder(verifyChecksums: config.verifyChecksums)
        decoder.decapsulateTunnels = config.decapsulateTunnels
        table = FlowTable(config: config.table)
        tcpStorage = .allocate(capacity: 1)
        tcpStorage.initialize(to: TCPReassembler(config: config.tcp))
        // Per-slot arrays are reserved for as many slots as the table reserves entries: growing them by
        // doubling would copy them, holding old and new copies at once, every time the table grows.
        tcpStorage.pointee.reserve(slots: table.reservedSlots)
        lingering.reserveCapacity(table.reservedSlots)
        defragmenter = Defragmenter(config: config.defragment)
        sinkStorage = .allocate(capacity: 1)
        sinkStorage.initialize(to: sink)
        packet = .allocate(capacity: 1)
        packet.initialize(to: DecodedPacket())
        inner = .allocate(capacity: 1)
        inner.initialize(to: DecodedPacket())
        sinkStorage.pointee.reserveSlots(table.reservedSlots)
    }

    deinit {
        packet.deinitialize(count: 1)
        packet.deallocate()
        inner.deinitialize(count: 1)
        inner.deallocate()
        sinkStorage.deinitialize(count: 1)
        sinkStorage.deallocate()
        tcpStorage.pointee.deallocate()
        tcpStorage.deinitialize(count: 1)
        tcpStorage.deallocate()
    }

    /// The sink, for reading results or adjusting it between packets.
    public var sink: Sink {
        get { sinkStorage.pointee }
        set { sinkStorage.pointee = newValue }
    }

    public var anomalies: AnomalyCounters { decoder.counters }

    /// Set by a pipeline whose engines share one clock (`Pipeline` with several shards): idle expiry then runs only
    /// from `advanceClock`, at the moments one engine over the whole input would run it, so every
    /// flow ends at the same time whatever the number of shards.
    public var externalClock = false

    /// Moves packet time to `time`; with `expire`, ends flows idle past their timeout, as `process` does once a second.
    public func advanceClock(to time: Timestamp, expire shouldExpire: Bool) {
        now = time
        if shouldExpire { expire(now: time) }
    }

    /// Processes one captured packet.
    public func process(_ record: PacketRecord) {
        counters.packets &+= 1
        counters.bytes &+= UInt64(truncatingIfNeeded: record.originalLength)
        now = record.timestamp
        if !externalClock && (now.nanoseconds >= lastExpiry &+ 1_000_000_000 || lastExpiry == .min) {
            expire(now: now)
            lastExpiry = now.nanoseconds
        }
        decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &packet.pointee)
        guard packet.pointee.isIP else {
            counters.nonIP &+= 1
            return
        }
        let vlan = config.vlanInKey ? (packet.pointee.outerVLAN ?? FlowKey.noVLAN) : FlowKey.noVLAN
        if packet.pointee.isFragment {
            counters.fragments &+= 1
            switch defragmenter.process(packet.pointee, bytes: record.bytes, vlan: vlan, timestamp: record.timestamp) {
            case .complete(let datagram):
                counters.reassembledDatagrams &+= 1
                decoder.decode(datagram, originalLength: datagram.count, linkType: .raw, into: &inner.pointee)
                guard inner.pointee.isIP, !inner.pointee.isFragment else { return }
                handleTransport(inner, bytes: datagram, vlan: vlan, time: record.timestamp, frameLength: record.originalLength)
            default:
                return
            }
            return
        }
        handleTransport(packet, bytes: record.bytes, vlan: vlan, time: record.timestamp, frameLength: record.originalLength)
    }

    @inline(__always)
    private static func counted(_ p: UnsafePointer<DecodedPacket>, frameLength: Int) -> FlowPacket {
        FlowPacket(frameLength: frameLength, ipLength: p.pointee.ipTotalLength, payloadLength: p.pointee.payloadLength, tcpFlags: p.pointee.tcpFlags.rawValue,
                   sequence: p.pointee.tcpSequence, acknowledgement: p.pointee.tcpAcknowledgement, window: p.pointee.tcpWindow, tcpOptions: p.pointee.tcpOptions)
    }

    private func handleTransport(_ p: UnsafePointer<DecodedPacket>, bytes: UnsafeRawBufferPointer, vlan: UInt16, time: Timestamp, frameLength: Int) {
        switch p.pointee.transport {
        case .tcp: handleTCP(p, bytes: bytes, vlan: vlan, time: time, frameLength: frameLength)
        case .udp:
            let (key, fromFirst) = FlowKey.make(source: p.pointee.source, sourcePort: p.pointee.sourcePort, destination: p.pointee.destination,
                                                destinationPort: p.pointee.destinationPort, ipProtocol: IPProtocol.udp, vlan: vlan)
            let slot = findOrCreate(key, time: time, timeoutClass: Self.classUDP)
            table.touch(slot, time: time, frameLength: frameLength)
            sinkStorage.pointee.flowPacket(view(slot), fromFirst: fromFirst, packet: Self.counted(p, frameLength: frameLength), time: time)
            let payload = Self.clamped(bytes, p.pointee.payloadOffset, p.pointee.payloadCapturedLength)
            sinkStorage.pointee.flowData(view(slot), fromFirst: fromFirst, bytes: payload, time: time)
        case .icmp, .icmpv6:
            let proto = p.pointee.transport == .icmp ? IPProtocol.icmp : IPProtocol.icmpv6
            let (key, fromFirst) = FlowKey.make(source: p.pointee.source, sourcePort: 0, destination: p.pointee.destination,
                                                destinationPort: 0, ipProtocol: proto, vlan: vlan)
            let slot = findOrCreate(key, time: time, timeoutClass: Self.classICMP)
            table.touch(slot, time: time, frameLength: frameLength)
            sinkStorage.pointee.flowPacket(view(slot), fromFirst: fromFirst, packet: Self.counted(p, frameLength: frameLength), time: time)
            // The whole ICMP message, header included, as SF-TAP delivers it.
            let end = p.pointee.transportOffset + min(p.pointee.payloadCapturedLength, p.pointee.payloadLength)
            let message = UnsafeRawBufferPointer(rebasing: bytes[p.pointee.transportOffset ..< max(p.pointee.transportOffset, min(end, bytes.count))])
            sinkStorage.pointee.flowData(view(slot), fromFirst: fromFirst, bytes: message, time: time)
        case .other:
            counters.otherTransport &+= 1
        case .none:
            counters.undecodable &+= 1
        }
    }

    private func handleTCP(_ p: UnsafePointer<DecodedPacket>, bytes: UnsafeRawBufferPointer, vlan: UInt16, time: Timestamp, frameLength: Int) {
        let (key, fromFirst) = FlowKey.make(source: p.pointee.source, sourcePort: p.pointee.sourcePort, destination: p.pointee.destination,
                                            destinationPort: p.pointee.destinationPort, ipProtocol: IPProtocol.tcp, vlan: vlan)
        let flags = p.pointee.tcpFlags
        var slot: Int
        if let found = table.find(key) {
            slot = found
            if lingering[found] != .none {
                // A closed connection: absorb late packets; a fresh SYN (or, after an RST, any sign of life) starts a new one.
                let linger = lingering[found]
                let resetBySender = linger == (fromFirst ? .resetByFirst : .resetBySecond)
                let restarts = (flags.contains(.syn) && !flags.contains(.ack))
                    || (linger != .closed && (flags.contains(.syn) || (resetBySender && p.pointee.payloadCapturedLength > 0)))
                guard restarts else {
                    counters.tcpAfterClose &+= 1
                    table.touch(found, time: time, frameLength: frameLength)
                    sinkStorage.pointee.flowPacket(view(found), fromFirst: fromFirst, packet: Self.counted(p, frameLength: frameLength), time: time)
                    return
                }
                remove(found, time: time)
                slot = create(key, time: time, timeoutClass: Self.classTCP)
                reassembler.open(slot: slot)
            }
        } else {
            // Only a SYN or data can start a stream; a stray ACK, FIN or RST makes no flow.
            guard flags.contains(.syn) || p.pointee.payloadCapturedLength > 0 || config.tcpFlowsFromAnyPacket else {
                counters.tcpWithoutFlow &+= 1
                return
            }
            slot = create(key, time: time, timeoutClass: Self.classTCP)
            reassembler.open(slot: slot)
        }
        table.touch(slot, time: time, frameLength: frameLength)
        sinkStorage.pointee.flowPacket(view(slot), fromFirst: fromFirst, packet: Self.counted(p, frameLength: frameLength), time: time)
        if flags.contains(.fin) || flags.contains(.rst) { table.setTimeoutClass(slot, Self.classTCPClosing) }
        let payload = Self.clamped(bytes, p.pointee.payloadOffset, min(p.pointee.payloadCapturedLength, p.pointee.payloadLength))
        var forwarder = Forwarder(sink: sinkStorage, flow: view(slot), time: time)
        let outcome = reassembler.segment(slot: slot, fromFirst: fromFirst, flags: flags.rawValue, sequence: p.pointee.tcpSequence,
                                  acknowledgement: p.pointee.tcpAcknowledgement, payload: payload, time: time.nanoseconds, receiver: &forwarder)
        switch outcome {
        case .closed: destroy(slot, reason: .normal, time: time)
        case .reset: destroy(slot, reason: .reset, time: time, resetByFirst: fromFirst)
        case .open, .ignored: break
        }
    }

    /// `count` bytes at `offset`, cut to what `bytes` holds: a decoder field never indexes past the capture.
    @inline(__always)
    static func clamped(_ bytes: UnsafeRawBufferPointer, _ offset: Int, _ count: Int) -> UnsafeRawBufferPointer {
        let start = min(max(0, offset), bytes.count)
        return UnsafeRawBufferPointer(rebasing: bytes[start ..< start + min(max(0, count), bytes.count - start)])
    }

    /// Delivers reassembled bytes of one flow to the sink.
    struct Forwarder: TCPStreamReceiver {
        let sink: UnsafeMutablePointer<Sink>
        let flow: FlowView
        let time: Timestamp
        mutating func tcpData(fromFirst: Bool, bytes: UnsafeRawBufferPointer) {
            sink.pointee.flowData(flow, fromFirst: fromFirst, bytes: bytes, time: time)
        }
        mutating func tcpGap(fromFirst: Bool, length: Int) {
            sink.pointee.flowGap(flow, fromFirst: fromFirst, length: length, time: time)
        }
    }

    @inline(__always)
    private func view(_ slot: Int) -> FlowView {
        let e = table.entries[slot]
        return FlowView(key: e.key, id: e.id, slot: slot, created: e.created)
    }

    private func findOrCreate(_ key: FlowKey, time: Timestamp, timeoutClass: UInt8) -> Int {
        if let slot = table.find(key) { return slot }
        return create(key, time: time, timeoutClass: timeoutClass)
    }

    private func create(_ key: FlowKey, time: Timestamp, timeoutClass: UInt8) -> Int {
        if table.isFull, let victim = table.leastRecentlyActive {
            if lingering[victim] == .none { counters.evictions &+= 1 }
            end(victim, reason: .compromised, time: time)
        }
        let slot = table.insert(key, time: time, timeoutClass: timeoutClass)
        if slot >= lingering.count { lingering.append(contentsOf: repeatElement(.none, count: slot + 1 - lingering.count)) }
        counters.flowsCreated &+= 1
        sinkStorage.pointee.flowCreated(view(slot), time: time)
        return slot
    }

    /// Ends a TCP connection that closed or reset: DESTROYED now, then it lingers silently.
    private func destroy(_ slot: Int, reason: DestroyReason, time: Timestamp, resetByFirst: Bool = true) {
        end(slot, reason: reason, time: time, linger: reason == .reset ? (resetByFirst ? .resetByFirst : .resetBySecond) : .closed)
    }

    /// Drops a lingering closed connection's slot (its DESTROYED was emitted when it closed).
    private func remove(_ slot: Int, time: Timestamp) {
        lingering[slot] = .none
        release(slot, time: time)
    }

    private func release(_ slot: Int, time: Timestamp) {
        sinkStorage.pointee.flowReleased(view(slot), time: time)
        table.remove(slot)
    }

    /// Flushes buffered TCP data (skipping holes), emits DESTROYED and frees the slot
    /// (or, with `linger`, keeps it to absorb late packets).
    private func end(_ slot: Int, reason: DestroyReason, time: Timestamp, linger: Linger = .none) {
        if lingering[slot] != .none {
            remove(slot, time: time)
            return
        }
        let flow = view(slot)
        var finalReason = reason
        if flow.key.ipProtocol == IPProtocol.tcp {
            var forwarder = Forwarder(sink: sinkStorage, flow: flow, time: time)
            reassembler.flush(slot: slot, time: time.nanoseconds, receiver: &forwarder)
            if reason == .timeout && reassembler.resetPending(slot: slot) { finalReason = .reset }
            reassembler.close(slot: slot)
        }
        counters.destroyed[Int(finalReason.rawValue)] &+= 1
        sinkStorage.pointee.flowDestroyed(flow, reason: finalReason, time: time)
        if linger != .none {
            lingering[slot] = linger
            table.setTimeoutClass(slot, Self.classTCPClosing)
        } else {
            release(slot, time: time)
        }
    }

    /// Ends flows idle past their timeout at `now` (packet time), and expires fragments.
    public func expire(now: Timestamp) {
        while let slot = table.expired(now: now) {
            end(slot, reason: .timeout, time: now)
        }
        defragmenter.expire(now: now)
    }

    /// Bytes of per-flow state for one flow-table slot, by layout: the table entry, TCP reassembly's two
    /// directions and the linger mark (the table's hash index and the sink's own state come on top).
    public static var bytesPerSlot: Int {
        MemoryLayout<FlowTable.Entry>.stride + TCPReassembler.bytesPerSlot + MemoryLayout<Linger>.stride
    }

    /// Bytes reserved for per-flow state now: the table's arrays, TCP reassembly's per-slot state and the
    /// linger marks (array capacity, so it counts reserved slots whether or not a flow is in them; buffered
    /// TCP data and the sink's state are not included).
    public var flowStateReservedBytes: Int {
        table.reservedBytes + reassembler.slotBytesReserved + lingering.capacity * MemoryLayout<Linger>.stride
    }

    /// End of input: every open flow is flushed and destroyed with TIMEOUT (RESET if an RST was waiting).
    public func finish() {
        sinkStorage.pointee.inputEnded(time: now)
        while let slot = table.anyLive {
            end(slot, reason: .timeout, time: now)
        }
    }
}

extension FlowEngineCounters {
    /// Adds another shard's counters.
    public mutating func add(_ o: FlowEngineCounters) {
        packets &+= o.packets
        bytes &+= o.bytes
        nonIP &+= o.nonIP
        fragments &+= o.fragments
        reassembledDatagrams &+= o.reassembledDatagrams
        otherTransport &+= o.otherTransport
        tcpWithoutFlow &+= o.tcpWithoutFlow
        tcpAfterClose &+= o.tcpAfterClose
        undecodable &+= o.undecodable
        flowsCreated &+= o.flowsCreated
        for i in destroyed.indices { destroyed[i] &+= o.destroyed[i] }
        evictions &+= o.evictions
    }
}
