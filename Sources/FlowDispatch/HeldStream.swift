import FlowCore
import PacketCore

/// A TCP flow's first bytes, both directions, kept until the flow's analyzer is known and then replayed in
/// arrival order with each chunk's own time (so records come out as if the chunks had been delivered live).
///
/// One per held flow, made when holding starts and dropped at the decision. The callers bound the bytes
/// (`AnalyzeSink`: 4 KiB per direction for first-bytes routing, `ClassifierHoldPolicy.giveUpThreshold` with a
/// config). Chunks are kept as separate events up to `maxEvents`; past that, a chunk is appended to its
/// direction's last data event (order within a direction is kept, the interleaving and times of later chunks
/// are not), so the event list never grows past `maxEvents` plus a gap record per lost segment, at most
/// `maxEvents` more.
final class HeldStream {
    struct Event {
        var length: Int
        var time: Timestamp
        var fromFirst: Bool
        /// `length` bytes were never captured (nothing in `bytes1`/`bytes2`).
        var isGap: Bool
    }

    static let maxEvents = 256

    private(set) var bytes1: [UInt8] = []
    private(set) var bytes2: [UInt8] = []
    private(set) var events: [Event] = []

    func count(fromFirst: Bool) -> Int { fromFirst ? bytes1.count : bytes2.count }

    /// Whether the first held event came from endpoint 1 (nil when nothing is held).
    var firstFromFirst: Bool? { events.first?.fromFirst }

    func append(fromFirst: Bool, bytes: UnsafeRawBufferPointer, time: Timestamp) {
        if fromFirst { bytes1.append(contentsOf: bytes) } else { bytes2.append(contentsOf: bytes) }
        if events.count >= Self.maxEvents, let i = events.lastIndex(where: { $0.fromFirst == fromFirst && !$0.isGap }) {
            events[i].length += bytes.count
            return
        }
        events.append(Event(length: bytes.count, time: time, fromFirst: fromFirst, isGap: false))
    }

    func appendGap(fromFirst: Bool, length: Int, time: Timestamp) {
        guard events.count < 2 * Self.maxEvents else { return }
        events.append(Event(length: length, time: time, fromFirst: fromFirst, isGap: true))
    }

    /// Forgets everything one direction sent.
    func drop(fromFirst: Bool) {
        if fromFirst { bytes1 = [] } else { bytes2 = [] }
        events.removeAll { $0.fromFirst == fromFirst }
    }

    /// Calls `data` for each held chunk and `gap` for each lost stretch, in arrival order.
    func replay(data: (Bool, UnsafeRawBufferPointer, Timestamp) -> Void, gap: (Bool, Int, Timestamp) -> Void) {
        var offset1 = 0, offset2 = 0
        bytes1.withUnsafeBytes { b1 in
            bytes2.withUnsafeBytes { b2 in
                for e in events {
                    if e.isGap {
                        gap(e.fromFirst, e.length, e.time)
                    } else if e.fromFirst {
                        data(true, UnsafeRawBufferPointer(rebasing: b1[offset1 ..< offset1 + e.length]), e.time)
                        offset1 += e.length
                    } else {
                        data(false, UnsafeRawBufferPointer(rebasing: b2[offset2 ..< offset2 + e.length]), e.time)
                        offset2 += e.length
                    }
                }
            }
        }
    }
}
