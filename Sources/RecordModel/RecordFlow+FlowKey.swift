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
        var w = JSONWriter(capacity: 192)
        w.beginObject()
        w.flowMembers(key: key, originatorIsFirst: originatorIsFirst, communityIDSeed: communityIDSeed, icmp: icmp)
        w.endObject()
        // The members without the object's braces.
        self.init(flowID: FlowID.make(key: key, created: created),
                  members: w.buffer.withUnsafeBytes { Array(UnsafeRawBufferPointer(rebasing: $0[1 ..< $0.count - 1])) })
    }
}

extension JSONWriter {
    /// The members of `RecordFlow` written straight into the open object: a command that writes one
    /// record per flow (`flows`) has no use for them rendered apart first, which cost a writer, an array
    /// and a copy per record.
    public mutating func flowMembers(key: FlowKey, originatorIsFirst: Bool, communityIDSeed: UInt16 = 0,
                                     icmp: (type: UInt8, code: UInt8)? = nil) {
        let source = originatorIsFirst ? key.address1 : key.address2, destination = originatorIsFirst ? key.address2 : key.address1
        let sourcePort = originatorIsFirst ? key.port1 : key.port2, destinationPort = originatorIsFirst ? key.port2 : key.port1
        let isICMP = key.ipProtocol == 1 || key.ipProtocol == 58
        address("src_ip", source)
        if !isICMP { number("src_port", Int(sourcePort)) }
        address("dest_ip", destination)
        if !isICMP { number("dest_port", Int(destinationPort)) }
        string("proto", IPProtocol.name(key.ipProtocol))
        let ports: (UInt16, UInt16) = isICMP ? (UInt16(icmp?.type ?? 0), UInt16(icmp?.code ?? 0)) : (sourcePort, destinationPort)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: CommunityID.textCount) { text in
            CommunityID.write(seed: communityIDSeed, source: source, sourcePort: ports.0, destination: destination,
                              destinationPort: ports.1, ipProtocol: key.ipProtocol, into: text.baseAddress!)
            string("community_id", bytes: UnsafeBufferPointer(text))
        }
        if key.vlan != FlowKey.noVLAN {
            beginArray("vlan")
            number(nil, Int(key.vlan))
            endArray()
        }
    }
}
