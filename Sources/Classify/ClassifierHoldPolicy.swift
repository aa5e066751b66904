/// When a TCP flow whose first bytes are held is classified, and when it is given up — the one
/// policy `flowtap abstract` (the `Abstractor`) and `flowtap analyze --config` (the `AnalyzeSink`)
/// both follow, so a config classifies a flow the same way in both.
///
/// - A held flow is classified once both directions have data, or once either direction holds more
///   than `classifyThreshold` bytes, or when the flow ends (SF-TAP tries at DESTROYED too).
/// - Only the first `examinedBytes` of each direction are examined (SF-TAP reads 4096).
/// - A flow no rule matched is given up once either direction holds more than `giveUpThreshold`
///   bytes: its held bytes are freed and it is counted, so one flow holds at most about twice that.
public enum ClassifierHoldPolicy {
    public static let classifyThreshold = 65_536
    public static let giveUpThreshold = 131_072
    public static let examinedBytes = Classifier.tcpInspectionLimit

    /// Whether a flow holding `held1` and `held2` bytes is ready to classify.
    @inline(__always)
    public static func readyToClassify(held1: Int, held2: Int) -> Bool {
        (held1 > 0 && held2 > 0) || held1 > classifyThreshold || held2 > classifyThreshold
    }

    /// Whether a flow no rule matched at `held1` and `held2` bytes is given up.
    @inline(__always)
    public static func givesUp(held1: Int, held2: Int) -> Bool {
        held1 > giveUpThreshold || held2 > giveUpThreshold
    }
}
