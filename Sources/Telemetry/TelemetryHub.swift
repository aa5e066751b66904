import PacketCore
import Synchronization

/// Where a command's threads leave their latest `TelemetrySnapshot` for the HTTP thread.
///
/// Each thread that owns counters (a shard's worker, the socket thread, a forwarder) publishes its
/// own part, built on that thread when its `TelemetryClock` says one is due (a clock read between
/// batches, as statistics lines already do): one lock per publication, a couple of times a second,
/// none per packet. Readers get the parts merged: samples with the same name and labels added up,
/// talkers and protocols by name, the largest flows of all parts.
public final class TelemetryHub: Sendable {
    /// One point of the rate history: totals at a wall-clock time.
    public struct Point: Sendable {
        public var time: Double
        public var packets: UInt64
        public var bytes: UInt64
        public var activeFlows: UInt64
    }

    struct State {
        var parts: [TelemetrySnapshot?] = []
        var published = 0
        var history: [Point] = []
        var historyStart = 0
        var lastPoint = -Double.infinity
    }

    public let command: String
    public let startTime: Double
    /// Seconds between publications of one part, and between rate points.
    public let interval: Double
    /// Rate points kept (twenty minutes at the default interval).
    public let historyLimit: Int
    /// Rows of the talkers, protocols and top-flow lists.
    public let listLength = 10
    private let state = Mutex(State())
    /// When the status (the only reader of talkers and flows) was last asked for, in monotonic ms.
    private let lastStatusRead = Atomic<Int64>(Int64.min / 2)
    /// How long after a status read the threads keep computing views.
    public let viewsLinger: Double = 10

    public init(command: String, interval: Double = 0.5, historyLimit: Int = 2400) {
        self.command = command
        self.interval = interval
        self.historyLimit = historyLimit
        startTime = Timestamp.wallClock().secondsDouble
    }

    /// A clock for one publishing thread (not shared).
    public func makeClock() -> TelemetryClock { TelemetryClock(interval: interval) }

    /// Whether a thread should walk its flows for talkers and top flows: only while the status API (the
    /// dashboard) has been read in the last `viewsLinger` seconds. `/metrics` alone never costs a walk.
    public var viewsWanted: Bool {
        Int64(MonotonicClock.seconds() * 1000) - lastStatusRead.load(ordering: .relaxed) < Int64(viewsLinger * 1000)
    }

    /// The status API was read: the threads compute views for the next `viewsLinger` seconds.
    public func noteStatusRead() {
        lastStatusRead.store(Int64(MonotonicClock.seconds() * 1000), ordering: .relaxed)
    }

    /// Replaces part `part`'s snapshot (a thread's own counters) and adds a rate point when due.
    public func publish(_ snapshot: TelemetrySnapshot, part: Int = 0) {
        let now = Timestamp.wallClock().secondsDouble
        state.withLock { s in
            while s.parts.count <= part { s.parts.append(nil) }
            var snapshot = snapshot
            if !snapshot.hasViews, let previous = s.parts[part] {
                snapshot.talkers = previous.talkers
                snapshot.protocols = previous.protocols
                snapshot.topFlows = previous.topFlows
            }
            s.parts[part] = snapshot
            s.published += 1
            guard now - s.lastPoint >= interval * 0.9 else { return }
            s.lastPoint = now
            var point = Point(time: now, packets: 0, bytes: 0, activeFlows: 0)
            for p in s.parts {
                guard let p else { continue }
                point.packets &+= p.packets
                point.bytes &+= p.bytes
                point.activeFlows &+= p.activeFlows
            }
            if s.history.count < historyLimit {
                s.history.append(point)
            } else {
                s.history[s.historyStart] = point
                s.historyStart = (s.historyStart + 1) % historyLimit
            }
        }
    }

    /// Every part merged, and how many publications there have been.
    public var latest: (snapshot: TelemetrySnapshot, published: Int) {
        let (parts, published) = state.withLock { ($0.parts.compactMap { $0 }, $0.published) }
        return (Self.merge(parts, listLength: listLength), published)
    }

    /// The rate history, oldest first; a thread that has nothing to publish (an idle link) leaves
    /// the totals where they were, which the point at `now` shows as a zero rate.
    public var history: [Point] {
        let now = Timestamp.wallClock().secondsDouble
        return state.withLock { s in
            var points = Array(s.history[s.historyStart...] + s.history[..<s.historyStart])
            if var last = points.last, now - last.time > 2 * interval {
                last.time = now
                points.append(last)
            }
            return points
        }
    }

    static func merge(_ parts: [TelemetrySnapshot], listLength: Int) -> TelemetrySnapshot {
        guard parts.count > 1 else {
            var one = parts.first ?? TelemetrySnapshot()
            one.talkers = Array(one.talkers.prefix(listLength))
            one.topFlows = Array(one.topFlows.prefix(listLength))
            return one
        }
        var merged = TelemetrySnapshot()
        var sampleIndex: [MetricKey: Int] = [:]
        var talkers: [String: TrafficShare] = [:]
        var protocols: [String: TrafficShare] = [:]
        var protocolOrder: [String] = []
        var tableIndex: [String: Int] = [:]
        for part in parts {
            merged.packets &+= part.packets
            merged.bytes &+= part.bytes
            merged.activeFlows &+= part.activeFlows
            for sample in part.metrics {
                let key = MetricKey(name: sample.name, labels: sample.labels)
                if let i = sampleIndex[key] {
                    // Gauges of different threads add up too (active flows, queue depths).
                    merged.metrics[i].value += sample.value
                } else {
                    sampleIndex[key] = merged.metrics.count
                    merged.metrics.append(sample)
                }
            }
            for t in part.talkers { talkers[t.name, default: TrafficShare(name: t.name, packets: 0, bytes: 0, flows: 0)].add(t) }
            for p in part.protocols {
                if protocols[p.name] == nil { protocolOrder.append(p.name) }
                protocols[p.name, default: TrafficShare(name: p.name, packets: 0, bytes: 0, flows: 0)].add(p)
            }
            merged.topFlows += part.topFlows
            for table in part.tables {
                if let i = tableIndex[table.title] {
                    merged.tables[i].rows += table.rows
                } else {
                    tableIndex[table.title] = merged.tables.count
                    merged.tables.append(table)
                }
            }
        }
        merged.talkers = Array(talkers.values.sorted { ($0.bytes, $1.name) > ($1.bytes, $0.name) }.prefix(listLength))
        merged.protocols = protocolOrder.compactMap { protocols[$0] }.sorted { $0.bytes > $1.bytes }
        merged.topFlows = Array(merged.topFlows.sorted { $0.bytes > $1.bytes }.prefix(listLength))
        return merged
    }

    struct MetricKey: Hashable {
        var name: String
        var labels: [MetricLabel]
    }
}

extension TrafficShare {
    public mutating func add(_ other: TrafficShare) {
        packets &+= other.packets
        bytes &+= other.bytes
        flows &+= other.flows
    }
}

/// When one publishing thread's next snapshot is due: the first ask says yes, then one every
/// `interval` seconds of monotonic time.
public struct TelemetryClock: Sendable {
    public let interval: Double
    var next = -Double.infinity

    public init(interval: Double) { self.interval = interval }

    @inline(__always)
    public mutating func isDue() -> Bool {
        let now = MonotonicClock.seconds()
        guard now >= next else { return false }
        next = now + interval
        return true
    }
}
