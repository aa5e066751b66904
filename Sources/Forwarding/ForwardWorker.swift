#if canImport(Glibc)
import Glibc
#endif
import CShims
import PacketCore
import Synchronization

/// What the session and its workers share: the plan to run, the stop flag, each worker's counters as
/// last published, and the exporters already warned about.
public final class ForwardShared: @unchecked Sendable {
    let plan: Mutex<ForwardPlan>
    let generation = Atomic<Int>(0)
    let stopFlag = Atomic<Bool>(false)
    let published: Mutex<[(generation: Int, counters: ForwardCounters)?]>
    let warned = Mutex<Set<IPAddress>>([])
    let log: @Sendable (String) -> Void

    public init(plan: ForwardPlan, workers: Int, log: @escaping @Sendable (String) -> Void) {
        self.plan = Mutex(plan)
        published = Mutex(Array(repeating: nil, count: workers))
        self.log = log
    }

    public var currentPlan: ForwardPlan { plan.withLock { $0 } }

    /// Hands `plan` to the workers; each switches between two receive batches, so no datagram is lost.
    public func install(_ plan: ForwardPlan) {
        self.plan.withLock {
            $0 = plan
            generation.add(1, ordering: .releasing)
        }
    }

    public func stop() { stopFlag.store(true, ordering: .relaxed) }

    public var stopped: Bool { stopFlag.load(ordering: .relaxed) }

    /// Every worker's counters, summed: totals from all, per-rule and per-destination counts from the
    /// workers already on the current plan (`currentPlan`).
    public func counters() -> (plan: ForwardPlan, counters: ForwardCounters) {
        let (plan, current) = self.plan.withLock { ($0, generation.load(ordering: .acquiring)) }
        var sum = ForwardCounters(rules: plan.ruleNames.count, destinations: plan.destinations.count)
        published.withLock {
            for entry in $0 {
                guard let entry else { continue }
                sum.add(entry.counters, perPlan: entry.generation == current)
            }
        }
        return (plan, sum)
    }

    /// Says once per exporter that its templates now reach the collector under the forwarder's address.
    func warnTemplates(from exporter: IPAddress, kind: PayloadKind, to destination: ForwardDestination) {
        let first = warned.withLock { $0.insert(exporter).inserted }
        if first {
            log("warning: \(kind) from \(exporter) is forwarded to \(destination.endpoint) from this host's address, not the exporter's; "
                + "the collector will scope its templates to this host, so exporters reusing a template ID collide (use keep-source; see docs/forward.md)")
        }
    }
}

/// One forwarding thread: receives batches (recvmmsg) on its own `SO_REUSEPORT` socket of each listen
/// address, routes each datagram by the plan, and sends in batches (sendmmsg) per destination socket,
/// or per raw socket when the exporter's address is kept. Nothing is allocated per datagram; a send the
/// kernel refuses is counted against its destination and delays no other.
public final class ForwardWorker: @unchecked Sendable {
    struct Target {
        var fd: Int32
        let batch: OpaquePointer
        let owners: UnsafeMutablePointer<Int32>
        let lengths: UnsafeMutablePointer<UInt32>
        let results: UnsafeMutablePointer<Int32>
    }

    static let batchSize = 64
    let id: Int
    let listeners: [(fd: Int32, port: UInt16, batch: OpaquePointer)]
    let shared: ForwardShared
    let sendBuffer: Int32
    var plan: ForwardPlan
    var generation: Int
    var counters: ForwardCounters
    var targets: [Target] = []
    /// Per destination: its target, and for kept-source sends its sockaddr (port 0, as raw sockets want).
    var targetOf: [Int] = []
    var rawAddresses: [(sockaddr_storage, socklen_t)] = []
    var rawSockets: (v4: Int32, v6: Int32) = (-1, -1)
    var header = SpoofedHeader()
    var warnedLocally = Set<IPAddress>()
    var lastPublish = ForwardWorker.now()
    /// Tap mode's copies of captured payloads, `batchSize` slots of 64 KiB, `tapUsed` of them queued.
    let tapSlots: UnsafeMutableRawPointer
    var tapUsed = 0

    /// `listeners`: this worker's bound sockets and their local ports; none in tap mode, where the
    /// session's capture loop calls `forward(captured:…)`.
    public init(id: Int, listeners: [(fd: Int32, port: UInt16)], shared: ForwardShared, sendBuffer: Int32 = 4 << 20) {
        self.id = id
        self.listeners = listeners.map { ($0.fd, $0.port, flowtap_receive_batch_create(UInt32(Self.batchSize), 65536)!) }
        self.shared = shared
        self.sendBuffer = sendBuffer
        tapSlots = listeners.isEmpty ? .allocate(byteCount: Self.batchSize * 65536, alignment: 16) : .allocate(byteCount: 1, alignment: 16)
        (plan, generation) = shared.plan.withLock { ($0, shared.generation.load(ordering: .acquiring)) }
        counters = ForwardCounters(rules: plan.ruleNames.count, destinations: plan.destinations.count)
        adopt(plan)
    }

    deinit {
        closeTargets()
        tapSlots.deallocate()
        for l in listeners { flowtap_receive_batch_destroy(l.batch) }
        if rawSockets.v4 >= 0 { close(rawSockets.v4) }
        if rawSockets.v6 >= 0 { close(rawSockets.v6) }
    }

    /// The kernel's count of datagrams dropped on this worker's sockets (full receive buffer).
    public func kernelDrops() -> UInt64 {
        var total: UInt64 = 0
        for l in listeners {
            total += max(UInt64(flowtap_receive_batch_kernel_drops(l.batch)), ForwardSockets.kernelDrops(l.fd) ?? 0)
        }
        return total
    }

    /// Forwards until the session says stop, then sends what is queued and publishes its counters.
    public func run() {
        var fds = listeners.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        while !shared.stopFlag.load(ordering: .relaxed) {
            let ready = poll(&fds, nfds_t(fds.count), 100)
            adoptNewPlanIfAny()
            if ready > 0 {
                for (i, l) in listeners.enumerated() where fds[i].revents != 0 {
                    // Drain a bounded number of batches per socket, so one busy port cannot starve another.
                    for _ in 0 ..< 16 {
                        let n = flowtap_receive_batch_fill(l.batch, l.fd)
                        if n <= 0 { break }
                        forward(batch: l.batch, count: Int(n), port: l.port)
                        if n < Int32(Self.batchSize) { break }
                    }
                }
            }
            publishIfDue()
        }
        publish()
    }

    /// Switches to the session's newest plan when a reload installed one (between two batches).
    public func adoptNewPlanIfAny() {
        guard shared.generation.load(ordering: .acquiring) != generation else { return }
        flushAll()
        let (next, current) = shared.plan.withLock { ($0, shared.generation.load(ordering: .acquiring)) }
        generation = current
        // Totals carry over; per-rule and per-destination counts start again with the new plan.
        var fresh = ForwardCounters(rules: next.ruleNames.count, destinations: next.destinations.count)
        fresh.add(totalsOnly(counters))
        counters = fresh
        closeTargets()
        plan = next
        adopt(next)
    }

    /// Publishes the counters when 100 ms have passed since the last time.
    public func publishIfDue() {
        let now = Self.now()
        if now &- lastPublish >= 100_000_000 {
            publish()
            lastPublish = now
        }
    }

    func forward(batch: OpaquePointer, count: Int, port: UInt16) {
        for i in 0 ..< count {
            var length: UInt32 = 0
            var truncated: Int32 = 0
            let start = flowtap_receive_batch_datagram(batch, UInt32(i), &length, &truncated)
            let payload = UnsafeRawBufferPointer(start: start, count: Int(length))
            if truncated != 0 {
                counters.received &+= 1
                counters.receivedBytes &+= UInt64(length)
                counters.truncated &+= 1
                continue
            }
            let (source, sourcePort) = ForwardSockets.endpoint(flowtap_receive_batch_sender(batch, UInt32(i))!)
            route(payload, source: source, sourcePort: sourcePort, port: port)
        }
        flushAll()
    }

    /// Tap mode: one UDP datagram seen on the wire, sent to `port`. The payload is copied into the
    /// worker's own slots (the capture reuses its buffer), and sent with the next `flushAll` or when the
    /// slots are full.
    public func forward(captured payload: UnsafeRawBufferPointer, source: IPAddress, sourcePort: UInt16, port: UInt16) {
        if tapUsed == Self.batchSize { flushAll() }
        let slot = tapSlots + tapUsed * 65536
        let n = min(payload.count, 65536)
        if n > 0 { slot.copyMemory(from: payload.baseAddress!, byteCount: n) }
        tapUsed += 1
        route(UnsafeRawBufferPointer(start: slot, count: n), source: source, sourcePort: sourcePort, port: port)
    }

    /// Sends every queued message.
    public func flushAll() {
        for t in targets.indices where flowtap_send_batch_count(targets[t].batch) > 0 { flush(t) }
        tapUsed = 0
    }

    /// Counts the datagram and queues it for each destination of the first matching rule.
    @inline(__always)
    func route(_ payload: UnsafeRawBufferPointer, source: IPAddress, sourcePort: UInt16, port: UInt16) {
        counters.received &+= 1
        counters.receivedBytes &+= UInt64(payload.count)
        let kind = PayloadKind.of(payload)
        counters.kinds[Int(kind.rawValue)] &+= 1
        let (rule, range) = plan.route(source: source, port: port, kind: kind)
        if range.isEmpty {
            counters.unmatched &+= 1
            counters.unmatchedBytes &+= UInt64(payload.count)
            return
        }
        counters.rules[rule].datagrams &+= 1
        counters.rules[rule].bytes &+= UInt64(payload.count)
        for d in range {
            guard plan.sampledIn(d) else {
                counters.destinations[d].sampledOut &+= 1
                counters.sampledOut &+= 1
                continue
            }
            send(payload, to: d, source: source, sourcePort: sourcePort, kind: kind)
        }
    }

    @inline(__always)
    func send(_ payload: UnsafeRawBufferPointer, to d: Int, source: IPAddress, sourcePort: UInt16, kind: PayloadKind) {
        let destination = plan.destinations[d]
        let t = targetOf[d]
        if flowtap_send_batch_count(targets[t].batch) == UInt32(Self.batchSize) { flush(t) }
        let target = targets[t]
        let slot = Int(flowtap_send_batch_count(target.batch))
        var added: Int32
        if destination.keepSource {
            guard source.isIPv6 == destination.address.isIPv6 else {
                counters.destinations[d].familyMismatch &+= 1
                counters.lost &+= 1
                return
            }
            guard header.build(source: source, sourcePort: sourcePort, destination: destination.address, destinationPort: destination.port, payload: payload) else {
                counters.destinations[d].tooLong &+= 1
                counters.lost &+= 1
                return
            }
            let (address, addressLength) = rawAddresses[d]
            added = withUnsafePointer(to: address) { to in
                header.withBytes { h in
                    flowtap_send_batch_add(target.batch, h.baseAddress, UInt32(h.count), payload.baseAddress, UInt32(payload.count), to, UInt32(addressLength))
                }
            }
        } else {
            if kind.hasTemplates && !warnedLocally.contains(source) {
                warnedLocally.insert(source)
                shared.warnTemplates(from: source, kind: kind, to: destination)
            }
            added = flowtap_send_batch_add(target.batch, nil, 0, payload.baseAddress, UInt32(payload.count), nil, 0)
        }
        guard added == 0 else {
            counters.destinations[d].otherErrors &+= 1
            counters.lost &+= 1
            return
        }
        target.owners[slot] = Int32(d)
        target.lengths[slot] = UInt32(payload.count)
    }

    func flush(_ t: Int) {
        let target = targets[t]
        let n = Int(flowtap_send_batch_count(target.batch))
        if target.fd < 0 {
            // The destination's socket could not be opened: every datagram for it is lost, and counted.
            _ = flowtap_send_batch_flush(target.batch, -1, target.results)
        } else {
            _ = flowtap_send_batch_flush(target.batch, target.fd, target.results)
        }
        for i in 0 ..< n {
            let d = Int(target.owners[i])
            let result = target.fd < 0 ? EBADF : target.results[i]
            if result == 0 {
                counters.destinations[d].forwarded &+= 1
                counters.destinations[d].bytes &+= UInt64(target.lengths[i])
                counters.forwarded &+= 1
                counters.forwardedBytes &+= UInt64(target.lengths[i])
                continue
            }
            counters.lost &+= 1
            switch result {
            case ECONNREFUSED: counters.destinations[d].refused &+= 1
            case EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ENETDOWN: counters.destinations[d].unreachable &+= 1
            case EMSGSIZE: counters.destinations[d].tooLong &+= 1
            default: counters.destinations[d].otherErrors &+= 1
            }
        }
    }

    /// Opens what `plan` sends through: one connected socket per destination endpoint, and the raw
    /// socket of each family that keeps sources.
    func adopt(_ plan: ForwardPlan) {
        var byEndpoint: [ForwardDestination: Int] = [:]
        targetOf = []
        rawAddresses = []
        var rawTarget: (v4: Int?, v6: Int?) = (nil, nil)
        for destination in plan.destinations {
            if destination.keepSource {
                rawAddresses.append(ForwardSockets.storage(destination.address, port: 0))
                let v6 = destination.address.isIPv6
                if let t = v6 ? rawTarget.v6 : rawTarget.v4 { targetOf.append(t); continue }
                var fd = v6 ? rawSockets.v6 : rawSockets.v4
                if fd < 0 {
                    do { fd = try ForwardSockets.raw(ipv6: v6, sendBuffer: sendBuffer) } catch { shared.log("forward: \(error)") }
                    if v6 { rawSockets.v6 = fd } else { rawSockets.v4 = fd }
                }
                targets.append(Self.target(fd: fd))
                if v6 { rawTarget.v6 = targets.count - 1 } else { rawTarget.v4 = targets.count - 1 }
                targetOf.append(targets.count - 1)
            } else {
                rawAddresses.append((sockaddr_storage(), 0))
                let key = ForwardDestination(address: destination.address, port: destination.port)
                if let t = byEndpoint[key] { targetOf.append(t); continue }
                var fd: Int32 = -1
                do { fd = try ForwardSockets.connected(to: destination, sendBuffer: sendBuffer) } catch { shared.log("forward: \(error)") }
                targets.append(Self.target(fd: fd))
                byEndpoint[key] = targets.count - 1
                targetOf.append(targets.count - 1)
            }
        }
    }

    static func target(fd: Int32) -> Target {
        Target(fd: fd, batch: flowtap_send_batch_create(UInt32(batchSize))!, owners: .allocate(capacity: batchSize),
               lengths: .allocate(capacity: batchSize), results: .allocate(capacity: batchSize))
    }

    /// Sends what is queued, then closes the plan's connected sockets (raw sockets stay for the next plan).
    func closeTargets() {
        flushAll()
        for t in targets {
            if t.fd >= 0 && t.fd != rawSockets.v4 && t.fd != rawSockets.v6 { close(t.fd) }
            flowtap_send_batch_destroy(t.batch)
            t.owners.deallocate()
            t.lengths.deallocate()
            t.results.deallocate()
        }
        targets = []
    }

    func totalsOnly(_ c: ForwardCounters) -> ForwardCounters {
        var t = c
        t.rules = []
        t.destinations = []
        return t
    }

    public func publish() {
        let snapshot = counters
        let planGeneration = generation
        shared.published.withLock { $0[id] = (planGeneration, snapshot) }
    }

    static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }
}
