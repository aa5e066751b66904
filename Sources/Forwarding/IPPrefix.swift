import PacketCore

/// An address prefix (`10.1.0.0/16`, `2001:db8::/32`, or a single address as /32 or /128).
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
    /// The network address, host bits cleared.
    public var network: IPAddress
    public var length: Int

    public init(_ address: IPAddress, length: Int) {
        self.length = length
        self.network = Self.mask(address, length: length)
    }

    /// `ADDRESS` or `ADDRESS/LENGTH`; nil when either part is not valid.
    public init?(_ text: Substring) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        let bits = address.isIPv6 ? 128 : 32
        var length = bits
        if parts.count == 2 {
            guard let n = Int(parts[1]), (0 ... bits).contains(n) else { return nil }
            length = n
        }
        self.init(address, length: length)
    }

    public var isIPv6: Bool { network.isIPv6 }
    public var isHost: Bool { length == (isIPv6 ? 128 : 32) }

    public func contains(_ address: IPAddress) -> Bool {
        address.isIPv6 == isIPv6 && Self.mask(address, length: length) == network
    }

    /// `address` with every bit past `length` cleared (IPv4 addresses keep their value in `high`'s top 32 bits).
    @inlinable
    public static func mask(_ address: IPAddress, length: Int) -> IPAddress {
        var a = address
        let high = min(length, 64), low = max(length - 64, 0)
        a.high = high == 0 ? 0 : a.high & ~(UInt64.max >> UInt64(high))
        a.low = low == 0 ? 0 : a.low & ~(UInt64.max >> UInt64(low))
        return a
    }

    public var description: String { isHost ? network.description : "\(network)/\(length)" }
}
