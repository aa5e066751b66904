/// What a long-running command shows at one moment: its counters as Prometheus samples, and the
/// traffic views the status API and the dashboard draw (talkers, protocol mix, largest flows, and
/// per-cell or per-destination tables). The packet thread builds one when `TelemetryHub` says one
/// is due (a few times a second at most), never per packet.
public struct TelemetrySnapshot: Sendable {
    /// Totals the dashboard plots as rates.
    public var packets: UInt64 = 0
    public var bytes: UInt64 = 0
    public var activeFlows: UInt64 = 0
    public var metrics: [MetricSample] = []
    /// Hosts by bytes (in the flows the command holds at this moment, or the exporters it hears).
    public var talkers: [TrafficShare] = []
    /// Bytes, packets and flows by protocol or application class.
    public var protocols: [TrafficShare] = []
    public var topFlows: [TopFlow] = []
    /// Per-cell, per-destination, per-socket tables.
    public var tables: [StatusTable] = []
    /// Whether `talkers`, `protocols` and `topFlows` were computed for this snapshot; when false the
    /// hub keeps the part's previous ones (they cost a walk of the flow table, done only while someone
    /// reads the status).
    public var hasViews = true

    public init() {}

    /// Adds a monotonic counter (`name` ends in `_total`).
    public mutating func counter(_ name: String, _ help: String, _ value: UInt64, _ labels: KeyValuePairs<String, String> = [:]) {
        metrics.append(MetricSample(name: name, help: help, kind: .counter, labels: labels.map { MetricLabel(name: $0.key, value: $0.value) }, value: Double(value)))
    }

    /// Adds a value that goes up and down.
    public mutating func gauge(_ name: String, _ help: String, _ value: Double, _ labels: KeyValuePairs<String, String> = [:]) {
        metrics.append(MetricSample(name: name, help: help, kind: .gauge, labels: labels.map { MetricLabel(name: $0.key, value: $0.value) }, value: value))
    }

    /// Adds a counter with labels computed at run time (a destination's address, a cell's name).
    public mutating func counter(_ name: String, _ help: String, _ value: UInt64, labels: [MetricLabel]) {
        metrics.append(MetricSample(name: name, help: help, kind: .counter, labels: labels, value: Double(value)))
    }

    public mutating func gauge(_ name: String, _ help: String, _ value: Double, labels: [MetricLabel]) {
        metrics.append(MetricSample(name: name, help: help, kind: .gauge, labels: labels, value: value))
    }

    /// The sum of every sample named `name` (the tests compare these with the final statistics).
    public func total(_ name: String) -> Double {
        metrics.reduce(0) { $1.name == name ? $0 + $1.value : $0 }
    }
}

public struct MetricLabel: Sendable, Hashable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

public struct MetricSample: Sendable {
    public enum Kind: String, Sendable { case counter, gauge }
    public var name: String
    public var help: String
    public var kind: Kind
    public var labels: [MetricLabel]
    public var value: Double
}

/// One row of a talkers or protocol-mix list.
public struct TrafficShare: Sendable {
    public var name: String
    public var packets: UInt64
    public var bytes: UInt64
    public var flows: UInt64
    public init(name: String, packets: UInt64, bytes: UInt64, flows: UInt64) {
        self.name = name
        self.packets = packets
        self.bytes = bytes
        self.flows = flows
    }
}

/// One of the largest flows: its two endpoints in flow-key order (not necessarily the originator
/// first), as text built once per snapshot for at most a few flows.
public struct TopFlow: Sendable {
    public var endpointA: String
    public var endpointB: String
    public var proto: String
    public var packets: UInt64
    public var bytes: UInt64
    public var seconds: Double
    public init(endpointA: String, endpointB: String, proto: String, packets: UInt64, bytes: UInt64, seconds: Double) {
        self.endpointA = endpointA
        self.endpointB = endpointB
        self.proto = proto
        self.packets = packets
        self.bytes = bytes
        self.seconds = seconds
    }
}

/// A small table the dashboard shows as it is (cells of `incubate`, destinations of `forward`).
public struct StatusTable: Sendable {
    public var title: String
    public var columns: [String]
    public var rows: [[String]]
    public init(title: String, columns: [String], rows: [[String]] = []) {
        self.title = title
        self.columns = columns
        self.rows = rows
    }
}

/// Keeps the `limit` largest of a stream of items without sorting them all (a snapshot walks up to
/// the whole flow table). Inlinable, so each caller gets it specialised: unspecialised across the
/// module boundary an offer cost about 1,700 instructions (callgrind), most of a flow-table walk.
public struct TopList<Item> {
    public let limit: Int
    public var items: [Item] = []
    @usableFromInline let size: (Item) -> UInt64

    @inlinable
    public init(limit: Int, size: @escaping (Item) -> UInt64) {
        self.limit = limit
        self.size = size
    }

    /// Whether `limit` items are kept (then `items` is sorted, the smallest last).
    @inlinable
    public var isFull: Bool { items.count == limit }

    @inlinable
    public mutating func offer(_ item: Item) {
        if items.count < limit {
            items.append(item)
            if items.count == limit { items.sort { size($0) > size($1) } }
            return
        }
        let itemSize = size(item)
        guard let last = items.last, itemSize > size(last) else { return }
        var i = items.count - 1
        while i > 0 && size(items[i - 1]) < itemSize { i -= 1 }
        items.removeLast()
        items.insert(item, at: i)
    }

    /// Largest first.
    @inlinable
    public var sorted: [Item] { items.count < limit ? items.sorted { size($0) > size($1) } : items }
}
