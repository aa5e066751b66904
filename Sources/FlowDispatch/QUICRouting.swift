import Outputs
import FlowCore
import Analyzers
import Classify
import Flows
import PacketCore
import SFTapConfig

/// Which UDP flows go to QUIC analysis, and which side is the client: port 443, or a datagram that
/// starts with a long header of a version the analyzer decrypts; the client is the first sender
/// unless it sends from 443 to another port.
extension AnalyzeSink {
    /// A QUIC flow's client: the sender of its first datagram, unless that is sent from port 443 to another
    /// port (shared with the socket analyzers).
    static func quicSenderIsClient(key: FlowKey, fromFirst: Bool) -> Bool {
        !((fromFirst ? key.port1 : key.port2) == 443 && (fromFirst ? key.port2 : key.port1) != 443)
    }

    /// A UDP datagram for QUIC analysis; `take`: the config classified it as QUIC (nil: decide by port and header).
    func quicDatagram(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Double, take: Bool?) {
        guard flow.slot < flows.count, flows[flow.slot].id == flow.id else { return }
        let key = flow.key
        if flows[flow.slot].route == .undecided {
            guard take ?? (key.port1 == 443 || key.port2 == 443 || QUICAnalyzer.startsWithKnownLongHeader(bytes)) else {
                flows[flow.slot].chunksSeen += 1
                if flows[flow.slot].chunksSeen >= 4 { flows[flow.slot].route = .none }
                return
            }
            let clientIsFirst = fromFirst == Self.quicSenderIsClient(key: key, fromFirst: fromFirst)
            flows[flow.slot].route = .quic
            flows[flow.slot].clientIsFirst = clientIsFirst
            counters.quicFlows &+= 1
            let (one, two) = endpoints(flow)
            quic.open(flow: flow.id, client: clientIsFirst ? one : two, server: clientIsFirst ? two : one, vlan: Self.vlan(key), time: time,
                      record: record(flow))
        }
        guard flows[flow.slot].route == .quic else { return }
        quic.datagram(flow: flow.id, fromClient: fromFirst == flows[flow.slot].clientIsFirst, bytes: bytes, time: time)
    }
}
