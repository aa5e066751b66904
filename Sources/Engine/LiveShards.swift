#if canImport(Glibc)
import Glibc
#endif
import Capture
import FlowCore
import PacketCore

/// The capture handles of a live command with shards (`abstract`, `flows`, `analyze` with `-i`): one per shard, joined in one
/// kernel `PACKET_FANOUT` group when there are several. The group picks a handle by a symmetric hash of the IP
/// addresses (`LiveCapture.joinFanoutByAddresses`, the classic BPF program `incubate` uses), so every frame of
/// a flow — both directions, every fragment, VLAN-tagged or not — reaches one shard unchanged and in order. The
/// kernel's own flow hash split some flows between shards (VLAN-tagged and fragmented ones on a veth: 511 flows
/// from 500 sessions, their records broken).
public struct LiveShards {
    public let captures: [LiveCapture]

    /// Opens `shards` handles on `interface` (the filter attached in the kernel) and says so on standard error.
    public init(command: String, interface: String, filter: String?, shards: Int) throws(CaptureError) {
        captures = try (0 ..< max(1, shards)).map { _ throws(CaptureError) in try LiveCapture(interface: interface, filter: filter, immediate: true) }
        if captures.count > 1 {
            // The group ID is the process's: one group per process.
            let group = UInt16(truncatingIfNeeded: getpid())
            for (index, capture) in captures.enumerated() {
                // Every handle after the first received all frames since it was opened, as the group did:
                // what it holds from before joining is skipped (`LiveCapture.skipBefore`).
                if index > 0 { capture.skipBefore = Timestamp.wallClock() }
                try capture.joinFanoutByAddresses(group: group, members: captures.count)
            }
        }
        let fanout = captures.count > 1 ? " with \(shards) worker threads (packet fanout group \(UInt16(truncatingIfNeeded: getpid())))" : ""
        writeStandardError("flowtap \(command): capturing on \(interface)\(fanout); SIGINT or SIGTERM stops\n")
    }

    /// Runs `pipeline` on the handles until SIGINT/SIGTERM or its packet count.
    public func run<Sink: FlowEventSink>(_ pipeline: Pipeline<Sink>) throws(CaptureError) {
        if captures.count == 1 { try pipeline.run(live: captures[0]) } else { try pipeline.run(live: captures) }
    }
}
