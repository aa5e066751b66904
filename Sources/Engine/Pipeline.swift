#if canImport(Glibc)
import Glibc
#endif
import Capture
import Filters
import Flows
import FlowCore
import PacketCore
import Sharding
import Synchronization
import Wire

/// The one packet pipeline every flow command runs: input (capture files or live interfaces) →
/// an optional tcpdump filter → shards → one `FlowEngine` per shard → its sink. `abstract`,
/// `analyze` and `streams` run it; sockets mode adds the injection sockets around it.
///
/// One shard runs on the calling thread and behaves exactly as one engine reading the files
/// (the engine keeps its own clock). With N shards the calling thread reads, looks at just enough
/// of each packet to pick a shard (`ShardHash`), processes shard 0's packets itself and copies
/// every other packet into its shard's current batch; full batches go to that shard's worker
/// thread over a bounded single-producer, single-consumer ring (`ShardQueue`) and come back empty
/// over another. (Mapping the capture and handing packets over by reference was measured slower
/// on 2 cores, 0.22–0.26 s against 0.20–0.21 s on 620k packets, and holds the whole file in the
/// RSS.) Keeping shard 0 on the reading thread means `--threads 2` is two busy threads, not a
/// reader and two workers competing for two cores; shard 0 takes 85% of an even share of flows
/// (`ShardHash.Split`) for the reading it also does. A dedicated reader with two workers was measured
/// against this on 2 cores (1.9 M packets, 5–7 interleaved rounds, wall speed-up over one thread):
/// abstract 1.64× against 1.75×, analyze 1.34× against 1.42×, flows 1.60× against 1.65× — no better,
/// so the reader still runs shard 0. Every shard's thread reading the files itself and keeping its
/// own packets (no copies between cores, the reading done twice) gave flows 1.50–1.59× against
/// 1.32–1.49×, abstract 1.51–1.63× against 1.54×: within the machine's noise, and it cannot read
/// standard input or inflate gzip once, so it was not kept. Also measured and not kept (big60k, paired
/// rounds): refilling from the most recently returned batch first (0.99–1.01× the CPU), non-temporal
/// stores for the batch copy (1.4×: the worker then reads from memory), padding between the shards'
/// objects (within noise); handing packets over by pointer into a ring of eight 1 MiB read windows that
/// are reused only once the worker is done with them (reader 480 M → 469 M instructions on 315k
/// packets, but 0.999× the CPU and 1.03× (0.75–1.32) the wall time in 21 paired rounds: the kernel's
/// copy into a window the worker last read pays the same cross-core misses the batch copy did).
/// `abstract --threads 2` costs 1.25× the CPU of one thread where two one-thread processes cost 1.04×
/// each (big60k, a quiet host); about a third of the difference is instructions (hashing, batching),
/// the rest cache misses on packets that cross cores and contention in the kernel on event files both
/// shards append to (a file set per shard was 1.07–1.09× faster in four paired runs, but would change
/// `--out-dir`'s layout of one stream per interface). Reading and hashing every packet costs the reading thread 0.06 s of a
/// 0.43 s one-thread run, copying the worker's packets another 0.04–0.06 s. The summary reports each thread's CPU
/// seconds (`workerSplit`). Each worker owns one `FlowEngine` (flow table,
/// reassembly, defragmenter, sink): nothing is shared between shards, so there are no locks on
/// the packet path.
///
/// Both directions of a flow, and every fragment of a datagram, land on the same shard (see
/// `ShardHash`). Any positive number of shards works.
///
/// Limits: sixteen batches of up to 1024 packets or 512 KiB per shard are in flight; when a worker
/// falls behind, the reader waits for it (files are never dropped from). Per-flow event order is
/// kept; the interleaving of different flows in an output depends on thread timing. The filter
/// (`filter`) and the packet count (`packetLimit`) apply on the reading thread, before any shard.
public final class Pipeline<Sink: FlowEventSink> {
    public let config: FlowEngineConfig
    public let engines: [FlowEngine<Sink>]
    public var progress: ProgressReporter?
    /// Batches handed to workers, and times the reader found no free batch and waited.
    public private(set) var batchesHandedOver: UInt64 = 0
    public private(set) var readerWaits: UInt64 = 0
    /// CPU seconds of each thread of the last multi-shard file run, the reading thread (which also
    /// runs shard 0) first: how evenly the work was split. Empty after a one-shard run.
    public private(set) var threadCPU: [Double] = []

    /// Called on a worker's thread after each batch and once at its end, with the shard number
    /// (sockets mode hands the shard's events to the socket thread here).
    public var afterBatch: ((Int) -> Void)?
    /// Checked by the reader every 4096 packets (and by live workers after each read); true ends the
    /// input early. Flows are still ended.
    public var shouldStop: (() -> Bool)?
    /// One shard only: called on the calling thread every 256 packets, and after each live read that
    /// timed out (sockets mode serves its sockets here).
    public var onTick: (() -> Void)?
    /// A tcpdump expression's filter: packets it rejects never reach a shard (counted).
    public var filter: BPFFilter? {
        get { gate.filter }
        set { gate.filter = newValue }
    }
    /// Stop after this many packets have passed the filter (tcpdump's `-c`).
    public var packetLimit: UInt64? {
        get { gate.limit }
        set { gate.limit = newValue }
    }
    /// Packets read from the input, and those the filter rejected.
    public var packetsRead: UInt64 { gate.read }
    public var packetsFilteredOut: UInt64 { gate.rejected }
    private var gate = PacketGate()

    /// One engine on the calling thread.
    public convenience init(config: FlowEngineConfig = FlowEngineConfig(), sink: Sink) {
        self.init(config: config, sinks: [sink])
    }

    /// Reads `files` through one new engine with `sink` on the calling thread; returns the engine for
    /// its counters and sink.
    public static func run(config: FlowEngineConfig = FlowEngineConfig(), files: [String], sink: Sink) throws(CaptureError) -> FlowEngine<Sink> {
        let pipeline = Pipeline(config: config, sink: sink)
        try pipeline.run(files: files)
        return pipeline.engine
    }

    /// Packets and CPU seconds per worker, for summaries: "packets per worker: 310233, 304575; CPU seconds
    /// per thread: 0.312 (reading and shard 0), 0.254".
    public var workerSplit: String {
        var text = "packets per worker: " + engines.map { "\($0.counters.packets)" }.joined(separator: ", ")
        if !threadCPU.isEmpty {
            text += "; CPU seconds per thread: " + threadCPU.enumerated().map { i, s in
                String(format3: s) + (i == 0 ? " (reading and shard 0)" : "")
            }.joined(separator: ", ")
        }
        return text
    }

    /// The first shard's engine (the only one with one shard).
    public var engine: FlowEngine<Sink> { engines[0] }

    /// Every shard's engine counters added up (read once the run is over).
    public var counters: FlowEngineCounters {
        var c = FlowEngineCounters()
        for engine in engines { c.add(engine.counters) }
        return c
    }

    public init(config: FlowEngineConfig = FlowEngineConfig(), sinks: [Sink]) {
        precondition(!sinks.isEmpty, "a pipeline needs at least one shard")
        self.config = config
        // The flow limit is the whole pipeline's: each shard holds its share.
        var shardConfig = config
        shardConfig.table.maxFlows = max(1, (config.table.maxFlows + sinks.count - 1) / sinks.count)
        engines = sinks.map { FlowEngine(config: shardConfig, sink: $0) }
        // With several shards one clock, the reader's, drives every engine; one engine keeps its own.
        if engines.count > 1 {
            for engine in engines { engine.externalClock = true }
        }
    }

    /// Whether the filter lets `record` through (counting what it keeps out).
    @inline(__always)
    private func admits(_ record: PacketRecord, source: String) throws(CaptureError) -> Bool {
        do {
            return try gate.admits(bytes: record.bytes, originalLength: record.originalLength, linkType: record.linkType)
        } catch {
            throw CaptureError(source: source, reason: error.description)
        }
    }

    /// Whether `packetLimit` packets have passed the filter.
    @inline(__always)
    private var limitReached: Bool { gate.limitReached }

    /// One shard: the calling thread reads and runs the engine, as one engine would.
    private func runInline(files: [String]) throws(CaptureError) {
        let engine = engines[0]
        var stopped = false
        for file in files where !stopped {
            let reader = try CaptureFileReader(path: file)
            progress?.begin(name: file, totalBytes: reader.totalBytes)
            var n: UInt64 = 0
            while let record = try reader.next() {
                if limitReached || (n & 0xFFF == 0 && shouldStop?() == true) {
                    stopped = true
                    break
                }
                n &+= 1
                if n & 0xFF == 0 { onTick?() }
                if n & 0x3FFF == 0 { progress?.update(bytes: reader.bytesConsumed, packets: n) }
                guard try admits(record, source: file) else { continue }
                engine.process(record)
            }
            progress?.end()
        }
        engine.finish()
    }

    /// One shard on one live interface, on the calling thread, until `shouldStop` or a capture error.
    public func run(live capture: LiveCapture) throws(CaptureError) {
        precondition(engines.count == 1, "one capture handle per shard: use run(live:) with one handle per shard")
        let engine = engines[0]
        defer { engine.finish() }
        while shouldStop?() != true && !limitReached {
            if let record = try capture.next() {
                // The filter ran in the kernel: every packet that arrives has passed it.
                gate.pass()
                engine.process(record)
            }
            onTick?()
        }
    }

    /// Reads `files` in order through the shards, then ends every flow (each engine's `finish`).
    public func run(files: [String]) throws(CaptureError) {
        let n = engines.count
        guard n > 1 else { return try runInline(files: files) }
        // Shard 0 runs on this thread, inline: N threads in all, none of them only reading.
        let queues = (1 ..< max(1, n)).map { _ in ShardQueue() }
        assert(queues.count == n - 1, "one queue per worker shard; shard 0 runs inline")
        var threads: [pthread_t] = []
        let afterBatch = self.afterBatch
        let readerStart = threadCPUSeconds()
        let workerCPU = WorkerCPU(count: queues.count)
        for (i, queue) in queues.enumerated() {
            let engine = engines[i + 1]
            threads.append(startThread {
                Self.work(engine: engine, queue: queue, afterBatch: { afterBatch?(i + 1) })
                workerCPU.seconds.withLock { $0[i] = threadCPUSeconds() }
            })
        }
        var decoder = PacketDecoder(verifyChecksums: false)
        decoder.decapsulateTunnels = config.decapsulateTunnels
        let split = ShardHash.Split(shards: n), vlanInKey = config.vlanInKey
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
                    if limitReached { break }
                    guard try admits(record, source: file) else { continue }
                    let t = record.timestamp.nanoseconds
                    if t >= lastExpiry &+ 1_000_000_000 || lastExpiry == .min {
                        tickAll(record.timestamp, expire: true)
                        lastExpiry = t
                    }
                    lastTime = record.timestamp
                    var s = 0
                    if n > 1 {
                        if let quick = ShardHash.quickShard(record.bytes, linkType: record.linkType, vlanInKey: vlanInKey, split: split) {
                            s = quick
                        } else {
                            decoder.decode(record.bytes, originalLength: record.originalLength, linkType: record.linkType, into: &packet)
                            s = ShardHash.shard(of: packet, vlanInKey: vlanInKey, split: split)
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
                if shouldStop?() == true || limitReached { break }
            }
        } catch {
            failure = error
        }
        if let lastTime { tickAll(lastTime, expire: false) }
        for queue in queues { queue.handOver(last: true) }
        inline.finish()
        afterBatch?(0)
        let readerCPU = threadCPUSeconds() - readerStart
        for thread in threads { pthread_join(thread, nil) }
        threadCPU = [readerCPU] + workerCPU.seconds.withLock { $0 }
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

extension Pipeline {
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
                        // With events not yet handed over, take only what is already there: an idle link
                        // hands them over at once instead of after the read timeout.
                        if let record = try (sinceHandOver > 0 ? capture.next(waitMilliseconds: 0) : capture.next()) {
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

/// Each worker thread's CPU seconds, written as it ends.
private final class WorkerCPU: Sendable {
    let seconds: Mutex<[Double]>
    init(count: Int) { seconds = Mutex([Double](repeating: 0, count: count)) }
}

/// What live workers share: the stop flag and the first capture error.
private final class LiveState: Sendable {
    let stopped = Atomic<Bool>(false)
    let failure = Mutex<CaptureError?>(nil)
}

