import Outputs
import FlowCore
import Analyzers
import Classify
import Flows
import PacketCore
import SFTapConfig

/// Routing by an SF-TAP config (`analyze --config`): TCP flows held and classified as `abstract`
/// classifies them (`ClassifierHoldPolicy`), then sent to the analyzer their rule's interface names;
/// UDP datagrams classified one by one.
extension AnalyzeSink {
    /// Holds a TCP chunk and classifies when `Abstractor` would.
    func holdForClassifier(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        let held = flows[flow.slot].held ?? HeldStream()
        flows[flow.slot].held = held
        held.append(fromFirst: fromFirst, bytes: bytes, time: time)
        let n1 = held.bytes1.count, n2 = held.bytes2.count
        guard ClassifierHoldPolicy.readyToClassify(held1: n1, held2: n2) else { return }
        if !classify(flow) && ClassifierHoldPolicy.givesUp(held1: n1, held2: n2) {
            counters.givenUpTCPFlows &+= 1
            flows[flow.slot].route = .none
            flows[flow.slot].held = nil
        }
    }

    /// Classifies a held TCP flow; on a match routes it by its rule's interface and replays the held chunks.
    /// Returns whether a rule matched.
    func classify(_ flow: FlowView) -> Bool {
        guard let classifier, let held = flows[flow.slot].held else { return false }
        let key = flow.key
        let examined = ClassifierHoldPolicy.examinedBytes
        let result: Classification? = held.bytes1.withUnsafeBytes { b1 in
            held.bytes2.withUnsafeBytes { b2 in
                classifier.classifyTCP(port1: key.port1, port2: key.port2, buffer1: UnsafeRawBufferPointer(rebasing: b1.prefix(examined)),
                                       buffer2: UnsafeRawBufferPointer(rebasing: b2.prefix(examined)))
            }
        }
        guard let match = result else { return false }
        flows[flow.slot].held = nil
        onClassified?(key, ruleNames[match.ruleIndex])
        let route = ruleRoutes[match.ruleIndex]
        guard route == .http || route == .tls || route == .dns else {
            flows[flow.slot].route = .none
            unanalyzedFlows[match.ruleIndex] &+= 1
            return true
        }
        let clientIsFirst = Self.clientIsFirst(route: route, key: key, held: held, match: match)
        open(flow, route: route, clientIsFirst: clientIsFirst, time: held.events.first?.time ?? flow.created)
        replay(flow, held)
        return true
    }

    /// The client of a classified TCP flow: the side whose first bytes say so for this class, else the rule's
    /// `up` side, else for DNS the side not on port 53, else the side that sent first.
    static func clientIsFirst(route: Route, key: FlowKey, held: HeldStream, match: Classification) -> Bool {
        for fromFirst in [true, false] {
            let verdict = (fromFirst ? held.bytes1 : held.bytes2).withUnsafeBytes { b in
                b.isEmpty ? FirstBytes.no : firstBytes(b, key: key, fromFirst: fromFirst)
            }
            if case .decided(route, let senderIsClient) = verdict, route != .dns { return fromFirst == senderIsClient }
        }
        switch (match.first, match.second) {
        case (.up, _), (_, .down): return true
        case (.down, _), (_, .up): return false
        default: break
        }
        if route == .dns && (key.port1 == 53 || key.port2 == 53) { return key.port1 != 53 }
        return held.firstFromFirst ?? true
    }

    func classifiedDatagram(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        let key = flow.key
        guard let match = classifier?.classifyUDP(port1: key.port1, port2: key.port2, payload: bytes) else {
            counters.unclassifiedDatagrams &+= 1
            return
        }
        switch ruleRoutes[match.ruleIndex] {
        case .dns: dnsDatagram(flow, fromFirst: fromFirst, bytes: bytes, time: time)
        case .quic: quicDatagram(flow, fromFirst: fromFirst, bytes: bytes, time: Self.seconds(time), take: true)
        default: unanalyzedDatagrams[match.ruleIndex] &+= 1
        }
    }
}
