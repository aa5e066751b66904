#if canImport(Glibc)
import Glibc
#endif
import Capture
import Flows
import PacketCore
import Synchronization
import Wire

/// Runs capture files through N flow engines on N threads: the core-scale pipeline.
///
/// The calling thread reads, looks at just enough of each packet to pick a shard, processes
/// shard 0's packets itself and copies every other packet into its shard's current batch; full
/// batches go to that shard's worker thread over a bounded single-producer, single-consumer ring
/// and come back empty over another. (Mapping the capture and handing packets over by reference
/// was measured slower on 2 cores, 0.22–0.26 s against 0.20–0.21 s on 620k packets, and holds the
/// whole file in the RSS.) Keeping shard
/// 0 on the reading thread means `--threads 2` is two busy threads, not a reader and two workers
/// competing for two cores. Each worker owns one `FlowEngine`
/// (flow table, reassembly, defragmenter, sink): nothing is shared between shards, so there
/// are no locks on the packet path.
///
/// The shard is a symmetric hash of the two IP addresses (and the VLAN when it is part of the
/// flow key): both directions of a flow, and every fragment of a datagram (which carries no
/// ports past the first), land on the same shard. Any positive number of shards works.
///
/// Limits: sixteen batches of up to 1024 packets or 512 KiB per shard are in flight; when a worker
/// falls behind, the reader waits for it (files are never dropped from). Per-flow event order is
/// kept; the interleaving of different flows in an output depends on thread timing.
public final class ShardedRunner<Sink: FlowEventSink> {
    public let config: FlowEngineConfig
    public let engines: [FlowEngine<Sink>]
    public var progress: ProgressReporter?
    /// Batches handed to workers, and times the reader found no free batch and waited.
    public private(set) var batchesHandedOver: UInt64 = 0
    public private(set) var readerWaits: UInt64 = 0

    /// Called on a worker's thread after each batch and once at its end, with the shard number
    /// (sockets mode hands the shard's events to the socket thread here).
    public var afterBatch: ((Int) -> Void)?
    /// Checked by the reader every 4096 packets (and by live workers after each read); true ends the
    /// input early. Flows are still ended.
    public var shouldStop: (() -> Bool)?

    public init(config: FlowEngineConfig = FlowEngineConfig(), sinks: [Sink]) {
        precondition(!sinks.isEmpty, "ShardedRunner needs at least one shard")
        self.config = config
        // The flow limit is the whole pipeline's: each shard holds its share.
        var shardConfig = config
        shardConfig.table.maxFlows = max(1, (config.table.maxFlows + sinks.count - 1) / sinks.count)
        engines = sinks.map { FlowEngine(config: shardConfig, sink: $0) }
        for engine in engines { engine.externalClock = true }
    }

    /// Reads `files` in order through the shards, then ends every flow (each engine's `finish`).
    public func run(files: [String]) throws(CaptureError) {
        let n = engines.count
        // Shard 0 runs on this thread, inline: N threads in all, none of them only reading.
        let queues = (1 ..< max(1, n)).map { _ in ShardQueue() }
        var threads: [pthread_t] = []
        let afterBatch = self.afterBatch
        for (i, queue) in queues.enumerated() {
            let engine = engines[i + 1]
            threads.append(startThread {
                Self.work(engine: engine, queue: queue, afterBatch: { afterBatch?(i + 1) })
            })
        }
        var decoder = PacketDecoder(verifyChecksums: false)
        decoder.decapsulateTunnels = config.decapsulateTunnels
        var packet = DecodedPacket()
        var failure: CaptureError?

        // One clock for all shards: a tick before the first packet past each second of packet time
        // (where one engine would expire idle flows), and one at the end with the last packet's time.
        var lastExpiry = Int64.min
        var lastTime: Timestamp?
        let inline = engines[0]
        var inlineSinceHandOver = 0
        func tickAll(_ time: Timestamp, expire: Bool) {
            inline.advanceClock(to: time, expire: expire)
            for queue in queues { queue.appendTick(time, expire: expire) }
        }

        do {
            for file in files {
                let reader = try CaptureFileReader(path: file)
                progress?.begin(name: file, totalBytes: reader.totalBytes)
                var count: UInt64 = 0
                while let record = try reader.next() {
                    let t = record.timestamp.nanoseconds
                    if t >= lastExpiry &+ 1_000_000_000 || lastExpiry == .min {
                        tickAll(record.timestamp, expire: true)
                        lastExpiry = t
                    }
                    lastTime = record.timestamp
                    var s = 0
                    if n > 1 {
                        if let quick = ShardHash.quickShard(record.bytes, linkType: record.linkType, vlanInKey: config.vlanInKey, shards: n) {
                            s = quick
                        } else {
                            decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &packet)
                            s = ShardHash.shard(of: packet, vlanInKey: config.vlanInKey, shards: n)
                        }
                    }
                    if s == 0 {
                        inline.process(record)
                        inlineSinceHandOver &+= 1
                        if inlineSinceHandOver == PacketBatch.recordCapacity {
                            inlineSinceHandOver = 0
                            afterBatch?(0)
                        }
                    } else {
                        queues[s - 1].append(record)
                    }
                    count &+= 1
                    if count & 0xFFF == 0 {
                        if count & 0x3FFF == 0 { progress?.update(bytes: reader.bytesConsumed, packets: count) }
                        if shouldStop?() == true { break }
                    }
                }
                progress?.end()
                if shouldStop?() == true { break }
            }
        } catch {
            failure = error
        }
        if let lastTime { tickAll(lastTime, expire: false) }
        for queue in queues { queue.handOver(last: true) }
        inline.finish()
        afterBatch?(0)
        for thread in threads { pthread_join(thread, nil) }
        batchesHandedOver = queues.reduce(0) { $0 &+ $1.handedOver }
        readerWaits = queues.reduce(0) { $0 &+ $1.waits }
        if let failure { throw failure }
    }

    private static func work(engine: FlowEngine<Sink>, queue: ShardQueue, afterBatch: () -> Void) {
        var backoff = Backoff()
        while true {
            guard let token = queue.filled.pop() else {
                backoff.wait()
                continue
            }
            backoff.reset()
            let batch = queue.batches[token]
            for i in 0 ..< batch.count {
                if let tick = batch.tick(i) {
                    engine.advanceClock(to: tick.time, expire: tick.expire)
                } else {
                    engine.process(batch.record(i))
                }
            }
            let last = batch.endOfInput
            batch.reset()
            _ = queue.free.push(token)
            if last {
                engine.finish()
                afterBatch()
                return
            }
            afterBatch()
        }
    }
}

extension ShardedRunner {
    /// Live capture over the shards: one capture handle per worker, all in one kernel fanout group
    /// that hashes each flow to one handle (PACKET_FANOUT_HASH, with fragments reassembled for the
    /// hash by PACKET_FANOUT_FLAG_DEFRAG), so each worker reads its own packets and nothing passes
    /// between threads. Each engine keeps its own clock (live time). Runs until `shouldStop` or a
    /// capture error, then ends every flow. A read blocks until a packet comes (libpcap's timeout
    /// does not fire on an idle TPACKET_V3 ring), so whoever sets `shouldStop` also calls
    /// `breakLoop()` on every capture.
    public func run(live captures: [LiveCapture]) throws(CaptureError) {
        precondition(captures.count == engines.count, "one capture handle per shard")
        let state = LiveState()
        let afterBatch = self.afterBatch, shouldStop = self.shouldStop
        var threads: [pthread_t] = []
        for s in engines.indices {
            let engine = engines[s], capture = captures[s]
            engine.externalClock = false
            threads.append(startThread {
                var sinceHandOver = 0
                while !state.stopped.load(ordering: .relaxed) {
                    if shouldStop?() == true {
                        state.stopped.store(true, ordering: .relaxed)
                        break
                    }
                    do throws(CaptureError) {
                        if let record = try capture.next() {
                            engine.process(record)
                            sinceHandOver += 1
                            if sinceHandOver < 256 { continue }
                        }
                    } catch {
                        // A capture broken off by `stopLive` is the normal end, not a failure.
                        if shouldStop?() != true { state.failure.withLock { if $0 == nil { $0 = error } } }
                        state.stopped.store(true, ordering: .relaxed)
                        break
                    }
                    // A read timeout (no packet) or 256 packets: let the events go.
                    sinceHandOver = 0
                    afterBatch?(s)
                }
                engine.finish()
                afterBatch?(s)
            })
        }
        for thread in threads { pthread_join(thread, nil) }
        if let error = state.failure.withLock({ $0 }) { throw error }
    }
}

/// What live workers share: the stop flag and the first capture error.
private final class LiveState: Sendable {
    let stopped = Atomic<Bool>(false)
    let failure = Mutex<CaptureError?>(nil)
}

/// A pipeline run on its own thread, so the calling thread can serve sockets meanwhile.
public final class BackgroundRun: @unchecked Sendable {
    private let finishedFlag = Atomic<Bool>(false)
    private var thread = pthread_t()
    private var failure: (any Error)?

    /// Starts `work` on a new thread.
    public init(_ work: @escaping () throws -> Void) {
        thread = startThread { [self] in
            do { try work() } catch { failure = error }
            finishedFlag.store(true, ordering: .releasing)
        }
    }

    public var isFinished: Bool { finishedFlag.load(ordering: .acquiring) }

    /// Waits for the thread; rethrows what `work` threw.
    public func join() throws {
        pthread_join(thread, nil)
        if let failure { throw failure }
    }
}

/// The closure a thread runs, carried through pthread_create's context pointer.
private final class ThreadBody: @unchecked Sendable {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Starts a POSIX thread running `body` (packet loops run on dedicated threads, not tasks).
func startThread(_ body: @escaping () -> Void) -> pthread_t {
    let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { context in
        Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().body()
        return nil
    }, context)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    return thread
}

extension FlowEngineCounters {
    /// Adds another shard's counters.
    public mutating func add(_ o: FlowEngineCounters) {
        packets &+= o.packets
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

/// Which shard a packet goes to. Both directions of a flow, and every fragment of a datagram,
/// must land on the same shard: the hash covers only the two IP addresses (symmetrically) and the
/// VLAN when it is part of the flow key. Tunnelled packets hash by their inner addresses, as the
/// engine keys their flows.
public enum ShardHash {
    /// The shard of a decoded packet among `shards` (non-IP packets: shard 0).
    @inline(__always)
    public static func shard(of packet: DecodedPacket, vlanInKey: Bool, shards: Int) -> Int {
        guard packet.isIP else { return 0 }
        let vlan = vlanInKey ? (packet.outerVLAN ?? FlowKey.noVLAN) : FlowKey.noVLAN
        return shard(packet.source, packet.destination, vlan: vlan, shards: shards)
    }

    @inline(__always)
    public static func shard(_ a: IPAddress, _ b: IPAddress, vlan: UInt16, shards: Int) -> Int {
        // XOR is symmetric in the two endpoints. An IPv4 address sits in the top half of `high`, so
        // every input bit must reach the bits the shard is taken from: murmur3's 64-bit finaliser.
        var h = (a.high ^ b.high) ^ ((a.low ^ b.low) >> 32 | (a.low ^ b.low) << 32) ^ UInt64(vlan)
        h ^= h >> 33
        h = h &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        h = h &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return pick(h >> 32, shards: shards)
    }

    /// Shard 0 runs on the thread that also reads and picks shards for every packet, about 15% of a
    /// shard's work (measured with `flowtap bench pipeline`), so its share of the hash range is
    /// 85/100 of an even share; the rest is split evenly. Any shard count works, not only powers of two.
    @inline(__always)
    static func pick(_ h32: UInt64, shards: Int) -> Int {
        guard shards > 1 else { return 0 }
        let n = UInt64(shards)
        let first = (UInt64(1) << 32) * 85 / (100 * n)
        guard h32 >= first else { return 0 }
        return 1 + Int(truncatingIfNeeded: (h32 - first) * (n - 1) / ((UInt64(1) << 32) - first))
    }

    /// The shard read straight off an Ethernet frame (up to two VLAN tags, then IPv4 or IPv6
    /// carrying TCP, UDP or ICMP), without decoding it; nil for anything else (other link types,
    /// MPLS, PPPoE, IPv6 extension headers, tunnel carriers, short frames), which the caller
    /// decodes. Equal to `shard(of:)` of the decoded packet wherever it answers (tested on the corpus).
    @inline(__always)
    public static func quickShard(_ bytes: UnsafeRawBufferPointer, linkType: LinkType, vlanInKey: Bool, shards: Int) -> Int? {
        guard linkType == .ethernet, bytes.count >= 14 else { return nil }
        var at = 12
        var etherType = bytes.beUInt16(at: at)
        var vlan = FlowKey.noVLAN
        var tags = 0
        while etherType == 0x8100 || etherType == 0x88A8 || etherType == 0x9100 {
            guard tags < 2, bytes.count >= at + 6 else { return nil }
            if tags == 0 && vlanInKey { vlan = bytes.beUInt16(at: at + 2) & 0x0FFF }
            at += 4
            tags += 1
            etherType = bytes.beUInt16(at: at)
        }
        at += 2
        let a: IPAddress, b: IPAddress, proto: UInt8, transport: Int
        var firstFragment = true
        if etherType == 0x0800 {
            guard bytes.count >= at + 20 else { return nil }
            let versionLength = bytes[at]
            let headerLength = Int(versionLength & 0x0F) * 4
            guard versionLength >> 4 == 4, headerLength >= 20, bytes.count >= at + headerLength,
                  Int(bytes.beUInt16(at: at + 2)) >= headerLength else { return nil }
            proto = bytes[at + 9]
            firstFragment = bytes.beUInt16(at: at + 6) & 0x1FFF == 0
            a = IPAddress.ipv4(bytes, at: at + 12)
            b = IPAddress.ipv4(bytes, at: at + 16)
            transport = at + headerLength
        } else if etherType == 0x86DD {
            guard bytes.count >= at + 40, bytes[at] >> 4 == 6 else { return nil }
            proto = bytes[at + 6]
            a = IPAddress.ipv6(bytes, at: at + 8)
            b = IPAddress.ipv6(bytes, at: at + 24)
            transport = at + 40
        } else {
            return nil
        }
        switch proto {
        case 6, 1, 58:
            break
        case 17:
            // UDP tunnels (VXLAN, Geneve, GTP-U, GRE-in-UDP) are keyed by their inner packets.
            guard firstFragment else { break }
            guard bytes.count >= transport + 4 else { return nil }
            let sp = bytes.beUInt16(at: transport), dp = bytes.beUInt16(at: transport + 2)
            if isTunnelPort(sp) || isTunnelPort(dp) { return nil }
        default:
            return nil
        }
        return shard(a, b, vlan: vlan, shards: shards)
    }

    @inline(__always)
    static func isTunnelPort(_ port: UInt16) -> Bool { port == 4789 || port == 6081 || port == 2152 || port == 4754 }
}
