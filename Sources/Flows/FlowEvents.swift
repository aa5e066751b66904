/// Why a flow ended; raw values are SF-TAP's binary `reason` codes (reference §2.2).
public enum DestroyReason: UInt8, Sendable {
    /// Both directions closed with FIN.
    case normal = 0
    /// An RST.
    case reset = 1
    /// Idle longer than its timeout, or still open at the end of the input.
    case timeout = 2
    /// A limit was hit: the flow table was full and this was the least recently active flow.
    case compromised = 3

    public var name: String {
        switch self {
        case .normal: "NORMAL"
        case .reset: "RESET"
        case .timeout: "TIMEOUT"
        case .compromised: "COMPROMISED"
        }
    }
}
