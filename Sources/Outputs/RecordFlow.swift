import PacketCore

/// The fields every record of one flow shares, so records join with each other and with other tools'
/// logs (Suricata EVE and Zeek name them so): `flow_id`, and the members
/// `"src_ip","src_port","dest_ip","dest_port","proto","community_id"` and `"vlan":[id]` when tagged,
/// the flow's originator as `src`.
///
/// They are rendered once per flow (`members` is JSON text, without braces), not per record.
public struct RecordFlow: Sendable, Equatable {
    /// The same number in every record of the flow, whatever command wrote it or how many threads ran.
    public var flowID: UInt64
    /// JSON members, comma-separated, without a leading or trailing comma.
    public var members: [UInt8]

    public init(flowID: UInt64, members: [UInt8]) {
        self.flowID = flowID
        self.members = members
    }
}

/// Where an analyzer hands each record: its bytes and newline, valid during the call (no String is made).
public typealias RecordLines = (UnsafeRawBufferPointer) -> Void

extension JSONWriter {
    /// Pre-rendered members (`"a":1,"b":2`) inside the open object.
    public mutating func members(_ raw: [UInt8]) {
        guard !raw.isEmpty else { return }
        string(nil, bytes: EmptyCollection<UInt8>())
        // The empty string written for its comma is replaced by the members.
        buffer.removeLast(2)
        buffer.append(contentsOf: raw)
    }

    /// Starts a record in the common shape: `{"timestamp","flow_id"?,"event_type","src_ip"…"vlan"?,"type","time"`.
    /// `type` is SF-TAP's record kind and also EVE's `event_type`; `time` (epoch seconds, as SF-TAP's
    /// analyzers print it) and `timestamp` (RFC 3339, microseconds) are the same instant. Without `flow`
    /// (an analyzer driven on its own), only `vlan` is written of the flow's fields.
    public mutating func beginRecord(_ type: String, time: Double, flow: RecordFlow?, vlan: Int? = nil) {
        reset()
        beginObject()
        timestamp("timestamp", Timestamp(epochSeconds: time))
        if let flow { number("flow_id", Int(truncatingIfNeeded: flow.flowID)) }
        string("event_type", type)
        if let flow {
            members(flow.members)
        } else if let vlan {
            beginArray("vlan")
            number(nil, vlan)
            endArray()
        }
        string("type", type)
        number("time", time)
    }
}
