import Defragment
import FlowCore
import SFTapConfig

extension FlowEngineConfig {
    /// The flow engine's limits as `flowtap abstract` takes them from an SF-TAP config's `global`
    /// section: TCP idle timeout, mid-stream pickup, reassembly memcap, flow-table size, overlap policy.
    public init(abstracting settings: SFTapSettings) {
        self.init()
        if let timeout = settings.global.timeout { table.idleTimeouts[0] = Int64(timeout) * 1_000_000_000 }
        tcp.requireSYN = !settings.global.midstream
        tcp.maxBufferedBytesTotal = settings.global.reassemblyMemcapMiB << 20
        table.maxFlows = settings.global.maxFlows
        defragment.policy = OverlapPolicy(rawValue: settings.global.overlapPolicy) ?? .bsd
    }
}
