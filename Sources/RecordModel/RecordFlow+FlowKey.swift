import Flows
import Outputs
import PacketCore
import Wire

extension RecordFlow {
    /// A flow's shared record fields: `originatorIsFirst` says whether endpoint 1 of `key` started the
    /// flow (it becomes `src`); ICMP flows carry the first message's type and code in `icmp`, which take the
    /// ports' place in the Community ID and are not written as ports.
    public init(key: FlowKey, originatorIsFirst: Bool, created: Timestamp, communityIDSeed: UInt16 = 0,
                icmp: (type: UInt8, code: UInt8)? = nil) {
        let source = originatorIsFirst ? key.address1 : key.address2, destination = originatorIsFirst ? key.address2 : key.address1
        let sourcePort = originatorIsFirst ? key.port1 : key.port2, destinationPort = originatorIsFirst ? key.port2 : key.port1
        let isICMP = key.ipProtocol == 1 || key.ipProtocol == 58
        var w = JSONWriter(capacity: 192)
        w.beginObject()
        w.address("src_ip", source)
        if !isICMP { w.number("src_port", Int(sourcePort)) }
        w.address("dest_ip", destination)
        if !isICMP { w.number("dest_port", Int(destinationPort)) }
        w.string("proto", IPProtocol.name(key.ipProtocol))
        let ports: (UInt16, UInt16) = isICMP ? (UInt16(icmp?.type ?? 0), UInt16(icmp?.code ?? 0)) : (sourcePort, destinationPort)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: CommunityID.textCount) { text in
            CommunityID.write(seed: communityIDSeed, source: source, sourcePort: ports.0, destination: destination,
                              destinationPort: ports.1, ipProtocol: key.ipProtocol, into: text.baseAddress!)
            w.string("community_id", bytes: UnsafeBufferPointer(text))
        }
        if key.vlan != FlowKey.noVLAN {
            w.beginArray("vlan")
            w.number(nil, Int(key.vlan))
            w.endArray()
        }
        w.endObject()
        // The members without the object's braces.
        self.init(flowID: FlowID.make(key: key, created: created),
                  members: w.buffer.withUnsafeBytes { Array(UnsafeRawBufferPointer(rebasing: $0[1 ..< $0.count - 1])) })
    }
}
