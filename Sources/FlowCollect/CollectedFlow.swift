import PacketCore

/// The fields of one NetFlow/IPFIX data record FlowTap reads; the rest of a record is skipped.
struct CollectedFlow {
    var source = IPAddress.zero
    var destination = IPAddress.zero
    var hasSource = false
    var hasDestination = false
    var sourcePort: UInt16 = 0
    var destinationPort: UInt16 = 0
    var ipProtocol: UInt8 = 0
    var hasProtocol = false
    var packets: UInt64 = 0
    var bytes: UInt64 = 0
    var hasPackets = false
    var hasBytes = false
    var start: Timestamp?
    var end: Timestamp?
    /// NetFlow v9 / IPFIX times relative to the exporter's boot (`flowStartSysUpTime`), in milliseconds.
    var startUptime: UInt32?
    var endUptime: UInt32?
    /// IPFIX `flowStartDeltaMicroseconds`/`flowEndDeltaMicroseconds`: before the export time.
    var startDelta: UInt32?
    var endDelta: UInt32?
    var tcpFlags: UInt16?
    var tos: UInt8?
    var input: UInt32?
    var output: UInt32?
    var nextHop: IPAddress?
    var sourceAS: UInt32?
    var destinationAS: UInt32?
    var sourceMask: UInt8?
    var destinationMask: UInt8?
    var vlan: UInt16?
    var icmpTypeCode: UInt16?
    var endReason: UInt8?
    var direction: UInt8?
    var biflowDirection: UInt8?
    var samplingInterval: UInt32?
}
