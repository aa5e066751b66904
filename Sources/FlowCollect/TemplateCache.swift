import FlowExport
import PacketCore

/// One field of a received template: element ID, length (65535 for variable length) and, for IPFIX
/// enterprise-specific elements, the enterprise number (0 for IANA's).
public struct TemplateField: Sendable, Equatable {
    public var id: UInt16
    public var length: UInt16
    public var enterprise: UInt32
}

/// A template an exporter announced: its fields and, for options templates, how many leading fields are scope.
public struct ReceivedTemplate: Sendable {
    public var fields: [TemplateField]
    public var scopeFieldCount: Int
    public var lastSeen: Timestamp
    /// Bytes of the shortest record (variable-length fields count their 1-byte length prefix).
    public var minimumRecordLength: Int

    var isOptions: Bool { scopeFieldCount > 0 }
}

/// Who a template belongs to: RFC 7011 §8 scopes template IDs to a transport session and observation
/// domain (for UDP, the exporter's address and port); RFC 3954 §5.1 to the source ID and exporter.
public struct TemplateKey: Hashable, Sendable {
    public var exporter: IPAddress
    public var exporterPort: UInt16
    public var domain: UInt32
    public var templateID: UInt16
    public var version: UInt8
}

/// The templates of every exporter session, bounded. Templates older than `lifetime` of the
/// collector's clock are treated as gone (RFC 7011 §8.4: a UDP collector expires templates that are not
/// refreshed); past `capacity`, the least recently refreshed template is dropped to make room.
public struct TemplateCache {
    public struct Counters: Sendable, Equatable {
        public var added: UInt64 = 0
        public var changed: UInt64 = 0
        public var withdrawn: UInt64 = 0
        public var expired: UInt64 = 0
        public var evicted: UInt64 = 0
        public init() {}
    }

    public let capacity: Int
    public let lifetime: Int64
    public private(set) var counters = Counters()
    private var templates: [TemplateKey: ReceivedTemplate] = [:]

    public init(capacity: Int = 65536, lifetimeSeconds: Int = 1800) {
        self.capacity = capacity
        lifetime = Int64(lifetimeSeconds) * 1_000_000_000
    }

    public var count: Int { templates.count }

    public mutating func store(_ key: TemplateKey, fields: [TemplateField], scopeFieldCount: Int, time: Timestamp) {
        let minimum = fields.reduce(0) { $0 + ($1.length == InformationElement.variableLength ? 1 : Int($1.length)) }
        let template = ReceivedTemplate(fields: fields, scopeFieldCount: scopeFieldCount, lastSeen: time, minimumRecordLength: minimum)
        if let old = templates[key] {
            if old.fields != fields || old.scopeFieldCount != scopeFieldCount { counters.changed &+= 1 }
        } else {
            if templates.count >= capacity, let oldest = templates.min(by: { $0.value.lastSeen < $1.value.lastSeen })?.key {
                templates[oldest] = nil
                counters.evicted &+= 1
            }
            counters.added &+= 1
        }
        templates[key] = template
    }

    public mutating func withdraw(_ key: TemplateKey) {
        if templates.removeValue(forKey: key) != nil { counters.withdrawn &+= 1 }
    }

    /// IPFIX's "all templates" withdrawal (template ID 2 or 3 with no fields, RFC 7011 §8.1).
    public mutating func withdrawAll(exporter: IPAddress, port: UInt16, domain: UInt32, options: Bool) {
        for key in templates.keys where key.exporter == exporter && key.exporterPort == port && key.domain == domain
            && templates[key]!.isOptions == options {
            templates[key] = nil
            counters.withdrawn &+= 1
        }
    }

    public mutating func lookup(_ key: TemplateKey, time: Timestamp) -> ReceivedTemplate? {
        guard let t = templates[key] else { return nil }
        if time.nanoseconds - t.lastSeen.nanoseconds > lifetime {
            templates[key] = nil
            counters.expired &+= 1
            return nil
        }
        return t
    }
}
