import SFTapCodec
import FlowCore
import Classify
import Flows
import PacketCore
import SFTapConfig

/// SF-TAP's flow abstraction on top of the flow engine's events: classify
/// each flow by the configured rules and write its events, in SF-TAP's text
/// or binary format, to the interface its rule names (reference §2–3).
///
/// - TCP: a flow's first bytes are held per direction until classification,
///   tried and given up as `ClassifierHoldPolicy` says (both directions have
///   data, either holds more than 64 KiB, or the flow ends; given up past
///   128 KiB, counted; 4096 bytes of each direction examined). On a match:
///   CREATED, the held data (the direction whose first byte came first,
///   first), then every later DATA and finally DESTROYED. A flow no rule
///   matches emits nothing.
/// - UDP: each datagram is classified alone (DATA only, as the original).
/// - ICMP/ICMPv6: each message is DATA on the `icmp`/`icmpv6` interface.
/// - `balance: N` spreads a rule's flows over `<if>0 … <if>N-1` by SF-TAP's
///   hash; FlowTap takes it modulo N, so N need not be a power of two.
public final class Abstractor<Outputs: InterfaceOutputs>: FlowEventSink {
    public typealias Counters = AbstractorCounters

    typealias RuleOutput = AbstractorRuleOutput
    typealias FlowState = AbstractorFlowState

    static var examinedBytes: Int { ClassifierHoldPolicy.examinedBytes }

    public let settings: SFTapSettings
    let classifier: Classifier
    let outputs: Outputs
    var ruleOutputs: [RuleOutput] = []
    var icmpOutput: RuleOutput?
    var icmpv6Output: RuleOutput?
    var flows: [FlowState] = []
    var formatter = SFTapHeaderWriter()
    public private(set) var counters = Counters()
    public private(set) var firstError: (any Error)?
    /// Names of the classifier's rules, in its order.
    public let ruleNames: [String]
    /// Called with each TCP flow's rule name when it is classified (for tests and tools).
    public var onClassified: ((FlowKey, String) -> Void)?

    /// The Vectorscan databases of this abstractor's rules, for other shards built from the same settings.
    public var compiledRules: CompiledRules { classifier.compiled }

    /// `compiled`: databases another abstractor compiled from the same `settings` (shards share them).
    public init(settings: SFTapSettings, outputs: Outputs, compiled: CompiledRules? = nil) throws {
        self.settings = settings
        self.outputs = outputs
        let classification = SFTapClassification(settings: settings)
        let rules = classification.rules
        ruleNames = rules.map(\.name)
        if let compiled {
            // Another shard's databases (the same settings): compiled once, each shard with its own scratch.
            classifier = try Classifier(compiled: compiled)
        } else {
            classifier = try classification.makeClassifier()
        }
        counters.perRule = [UInt64](repeating: 0, count: rules.count)
        for r in rules { ruleOutputs.append(try Self.makeOutput(r, outputs)) }
        if let r = settings.icmp { icmpOutput = try Self.makeOutput(r, outputs) }
        if let r = settings.icmpv6 { icmpv6Output = try Self.makeOutput(r, outputs) }
    }

    deinit {
        formatter.deallocate()
        for i in flows.indices { flows[i].freePrefix() }
    }

    static func makeOutput(_ rule: SFTapSettings.Rule, _ outputs: Outputs) throws -> RuleOutput {
        let directory = switch rule.proto {
        case .tcp: "tcp"
        case .udp: "udp"
        case .icmp, .icmpv6: "icmp"
        }
        var indices: [Int] = []
        if rule.balance > 1 {
            for n in 0 ..< rule.balance { indices.append(try outputs.output("\(directory)/\(rule.interface)\(n)")) }
        } else {
            indices.append(try outputs.output("\(directory)/\(rule.interface)"))
        }
        return RuleOutput(format: rule.format, body: rule.body, outputs: indices)
    }

    // MARK: Events out

    private func emit(_ rule: RuleOutput, output: Int, key: FlowKey, event: SFTapEvent.Kind, fromFirst: Bool?,
                      match: SFTapEvent.Match, bytes: UnsafeRawBufferPointer, reason: DestroyReason, time: Timestamp,
                      prefix: UnsafeRawPointer? = nil) {
        emit(format: rule.format, body: rule.body, output: output, key: key, event: event, fromFirst: fromFirst, match: match, bytes: bytes,
             reason: reason, time: time, prefix: prefix)
    }

    /// One event; the rule's format and body flag are passed alone so the per-event path copies no rule (and its array).
    /// `prefix`: the flow's text header prefix (`AbstractorFlowState.prefix`), when it has one.
    private func emit(format: SFTapSettings.Format, body: Bool, output: Int, key: FlowKey, event: SFTapEvent.Kind, fromFirst: Bool?,
                      match: SFTapEvent.Match, bytes: UnsafeRawBufferPointer, reason: DestroyReason, time: Timestamp,
                      prefix: UnsafeRawPointer? = nil) {
        do {
            if format == .binary {
                // A binary header's length is a u16: larger data goes out as several events.
                var offset = 0
                repeat {
                    let n = min(SFTapHeaderWriter.maxBinaryBody, bytes.count - offset)
                    let header = formatter.binary(key: key, event: event, fromFirst: fromFirst, match: match, length: n, reason: reason, time: time)
                    let payload = body ? UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + n]) : UnsafeRawBufferPointer(start: nil, count: 0)
                    try outputs.publish(output, header: header, body: payload)
                    counters.events &+= 1
                    offset += n
                } while offset < bytes.count
            } else {
                let header = if let prefix {
                    formatter.text(prefix: AbstractorFlowState.prefixBytes(prefix), event: event, fromFirst: fromFirst, match: match,
                                   length: bytes.count, reason: reason, time: time)
                } else {
                    formatter.text(key: key, event: event, fromFirst: fromFirst, match: match, length: bytes.count, reason: reason, time: time)
                }
                try outputs.publish(output, header: header, body: body ? bytes : UnsafeRawBufferPointer(start: nil, count: 0))
                counters.events &+= 1
            }
        } catch {
            counters.outputErrors &+= 1
            if firstError == nil { firstError = error }
        }
    }

    private static var empty: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nil, count: 0) }

    // MARK: FlowEventSink

    public func flowCreated(_ flow: FlowView, time: Timestamp) {
        guard flow.key.ipProtocol == 6 else { return }
        if flow.slot >= flows.count { flows.append(contentsOf: repeatElement(FlowState(), count: flow.slot + 1 - flows.count)) }
        flows[flow.slot].freePrefix()
        flows[flow.slot] = FlowState(id: flow.id)
    }

    public func flowData(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        let key = flow.key
        switch key.ipProtocol {
        case 6: tcpData(flow, fromFirst: fromFirst, bytes: bytes, time: time)
        case 17:
            guard let match = classifier.classifyUDP(port1: key.port1, port2: key.port2, payload: bytes) else {
                counters.udpDatagramsUnclassified &+= 1
                return
            }
            counters.perRule[match.ruleIndex] &+= 1
            let r = match.ruleIndex
            let output = ruleOutputs[r].outputs[Int(key.sftapHash) % ruleOutputs[r].outputs.count]
            emit(format: ruleOutputs[r].format, body: ruleOutputs[r].body, output: output, key: key, event: .data, fromFirst: fromFirst,
                 match: Self.label(match.matched), bytes: bytes, reason: .normal, time: time)
        default:
            guard let rule = key.ipProtocol == 1 ? icmpOutput : icmpv6Output else {
                counters.icmpWithoutInterface &+= 1
                return
            }
            emit(rule, output: rule.outputs[Int(key.sftapHash) % rule.outputs.count], key: key, event: .data, fromFirst: fromFirst,
                 match: .none, bytes: bytes, reason: .normal, time: time)
        }
    }

    private func tcpData(_ flow: FlowView, fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        guard flow.slot < flows.count, flows[flow.slot].id == flow.id else { return }
        let state = Int(flows[flow.slot].rule)
        if state >= 0 {
            emit(format: ruleOutputs[state].format, body: ruleOutputs[state].body, output: Int(flows[flow.slot].output), key: flow.key, event: .data, fromFirst: fromFirst,
                 match: fromFirst ? flows[flow.slot].label1 : flows[flow.slot].label2, bytes: bytes, reason: .normal, time: time,
                 prefix: flows[flow.slot].prefix)
            return
        }
        guard state == -1 else { return }
        if fromFirst {
            if flows[flow.slot].time1 == AbstractorFlowState.unset { flows[flow.slot].time1 = time }
            flows[flow.slot].held1.append(contentsOf: bytes)
        } else {
            if flows[flow.slot].time2 == AbstractorFlowState.unset { flows[flow.slot].time2 = time }
            flows[flow.slot].held2.append(contentsOf: bytes)
        }
        let n1 = flows[flow.slot].held1.count, n2 = flows[flow.slot].held2.count
        if ClassifierHoldPolicy.readyToClassify(held1: n1, held2: n2) {
            if !tryClassify(flow, time: time) && ClassifierHoldPolicy.givesUp(held1: n1, held2: n2) {
                counters.tcpFlowsGivenUp &+= 1
                flows[flow.slot].rule = -2
                flows[flow.slot].held1 = []
                flows[flow.slot].held2 = []
            }
        }
    }

    /// Classifies a held flow; on a match emits CREATED and the held data. Returns whether it matched.
    private func tryClassify(_ flow: FlowView, time: Timestamp) -> Bool {
        let key = flow.key
        let s = flows[flow.slot]
        let result: Classification? = s.held1.withUnsafeBytes { b1 in
            s.held2.withUnsafeBytes { b2 in
                classifier.classifyTCP(port1: key.port1, port2: key.port2,
                                       buffer1: UnsafeRawBufferPointer(rebasing: b1.prefix(Self.examinedBytes)),
                                       buffer2: UnsafeRawBufferPointer(rebasing: b2.prefix(Self.examinedBytes)))
            }
        }
        guard let match = result else { return false }
        let rule = ruleOutputs[match.ruleIndex]
        let output = rule.outputs[Int(key.sftapHash) % rule.outputs.count]
        flows[flow.slot].rule = Int32(match.ruleIndex)
        flows[flow.slot].output = Int32(output)
        flows[flow.slot].label1 = Self.label(match.first)
        flows[flow.slot].label2 = Self.label(match.second)
        if rule.format == .text { flows[flow.slot].prefix = AbstractorFlowState.makePrefix(formatter.textPrefix(key: key)) }
        let prefix = flows[flow.slot].prefix
        counters.tcpFlowsClassified &+= 1
        counters.perRule[match.ruleIndex] &+= 1
        onClassified?(key, ruleNames[match.ruleIndex])
        emit(rule, output: output, key: key, event: .created, fromFirst: nil, match: .none, bytes: Self.empty, reason: .normal, time: flow.created,
             prefix: prefix)
        // Held data, the direction whose first byte arrived first going first.
        let firstGoesFirst = s.time1 < s.time2 || s.time2 == AbstractorFlowState.unset
        let order: [(Bool, [UInt8], Timestamp)] = firstGoesFirst ? [(true, s.held1, s.time1), (false, s.held2, s.time2)] : [(false, s.held2, s.time2), (true, s.held1, s.time1)]
        for (fromFirst, held, heldTime) in order where !held.isEmpty {
            held.withUnsafeBytes { bytes in
                emit(rule, output: output, key: key, event: .data, fromFirst: fromFirst,
                     match: fromFirst ? flows[flow.slot].label1 : flows[flow.slot].label2, bytes: bytes, reason: .normal,
                     time: heldTime, prefix: prefix)
            }
        }
        flows[flow.slot].held1 = []
        flows[flow.slot].held2 = []
        return true
    }

    static func label(_ side: MatchSide) -> SFTapEvent.Match {
        switch side {
        case .up: .up
        case .down: .down
        case .unmatched: .none
        }
    }

    public func flowDestroyed(_ flow: FlowView, reason: DestroyReason, time: Timestamp) {
        guard flow.key.ipProtocol == 6, flow.slot < flows.count, flows[flow.slot].id == flow.id else { return }
        if flows[flow.slot].rule == -1 && (!flows[flow.slot].held1.isEmpty || !flows[flow.slot].held2.isEmpty) {
            // The original forces an attempt at DESTROYED, with one side possibly empty.
            _ = tryClassify(flow, time: time)
        }
        let state = Int(flows[flow.slot].rule)
        if state >= 0 {
            emit(ruleOutputs[state], output: Int(flows[flow.slot].output), key: flow.key, event: .destroyed, fromFirst: nil, match: .none,
                 bytes: Self.empty, reason: reason, time: time, prefix: flows[flow.slot].prefix)
        } else if state == -1 {
            counters.tcpFlowsUnclassified &+= 1
        }
        flows[flow.slot].freePrefix()
        flows[flow.slot] = FlowState()
    }
}

/// Where a rule's events go. Outside the generic abstractor: nested in it, its metadata was looked
/// up at run time on every event (callgrind: 326 instructions a call) by code not specialised for an
/// output type.
struct AbstractorRuleOutput {
    var format: SFTapSettings.Format
    var body: Bool
    /// Output indices, one per balance slot.
    var outputs: [Int]
}

/// An abstracted TCP flow's state, one per flow-table slot. Outside the generic abstractor so its
/// layout is fixed: code not specialised for an output type still copies it without value witnesses.
/// 64 bytes; per-flow memory at ten million flows is measured by `flowtap-bench flood`.
struct AbstractorFlowState {
    static let unset = Timestamp(nanoseconds: .max)
    var id: UInt64 = 0
    /// Held bytes per direction until classification.
    var held1: [UInt8] = []
    var held2: [UInt8] = []
    /// When each direction's first held byte came (`unset` until then).
    var time1 = AbstractorFlowState.unset
    var time2 = AbstractorFlowState.unset
    /// Rule index once classified; -1 while held; -2 once given up.
    var rule: Int32 = -1
    var output: Int32 = 0
    var label1: SFTapEvent.Match = .none
    var label2: SFTapEvent.Match = .none
    /// A classified text flow's header prefix (`ip1=…,l4=tcp`), formatted once at classification:
    /// a length byte, then the bytes. Owned by the abstractor, freed when the flow ends.
    var prefix: UnsafeRawPointer?

    static func makePrefix(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawPointer? {
        guard bytes.count <= Int(UInt8.max), let base = bytes.baseAddress else { return nil }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: bytes.count + 1, alignment: 1)
        storage.storeBytes(of: UInt8(bytes.count), as: UInt8.self)
        (storage + 1).copyMemory(from: base, byteCount: bytes.count)
        return UnsafeRawPointer(storage)
    }

    @inline(__always)
    static func prefixBytes(_ prefix: UnsafeRawPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: prefix + 1, count: Int(prefix.load(as: UInt8.self)))
    }

    mutating func freePrefix() {
        prefix?.deallocate()
        prefix = nil
    }
}

/// The abstractor's counters; one type whatever the output, so shards of different outputs add up.
public struct AbstractorCounters: Sendable {
    public var tcpFlowsClassified: UInt64 = 0
    public var tcpFlowsUnclassified: UInt64 = 0
    public var tcpFlowsGivenUp: UInt64 = 0
    public var udpDatagramsUnclassified: UInt64 = 0
    public var icmpWithoutInterface: UInt64 = 0
    public var events: UInt64 = 0
    public var outputErrors: UInt64 = 0
    public var perRule: [UInt64] = []

    public init() {}

    /// Adds another shard's counters.
    public mutating func add(_ o: AbstractorCounters) {
        tcpFlowsClassified &+= o.tcpFlowsClassified
        tcpFlowsUnclassified &+= o.tcpFlowsUnclassified
        tcpFlowsGivenUp &+= o.tcpFlowsGivenUp
        udpDatagramsUnclassified &+= o.udpDatagramsUnclassified
        icmpWithoutInterface &+= o.icmpWithoutInterface
        events &+= o.events
        outputErrors &+= o.outputErrors
        for i in perRule.indices where i < o.perRule.count { perRule[i] &+= o.perRule[i] }
    }
}
