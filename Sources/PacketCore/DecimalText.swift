extension String {
    /// A number with exactly three decimals ("0.250"), as summaries print seconds, without printf.
    public init(format3 value: Double) {
        let scaled = Int((value * 1000).rounded())
        let frac = String(abs(scaled) % 1000)
        let sign = scaled < 0 && scaled > -1000 ? "-" : ""
        self = sign + "\(scaled / 1000)." + String(repeating: "0", count: 3 - frac.count) + frac
    }
}
