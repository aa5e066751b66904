import FlowCore
import Flows
import Reassembly

// What each flow costs in memory, for `flowtap-bench flood` and for tests that bound it.

extension Abstractor {
    /// Bytes of the abstractor's per-flow state (one per flow-table slot, TCP flows only), held data not included.
    public static var flowStateBytes: Int { MemoryLayout<FlowState>.stride }

    /// Reserves per-flow state for the engine's slots at once, so the array is not copied as the table fills.
    public func reserveSlots(_ slots: Int) { flows.reserveCapacity(slots) }

    /// Bytes reserved for per-flow state now (capacity of the per-slot array, held data not included).
    public var flowStateReservedBytes: Int { flows.capacity * MemoryLayout<FlowState>.stride }
}
