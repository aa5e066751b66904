/// Fragment data lives in 1 KiB pages cut from one slab of
/// `maxTotalBytes`, allocated once and never grown (gopacket's page pool).
/// The slab is left uninitialised, so the kernel commits only the pages
/// that were ever written.
struct PageSlab {
    static let shift = 10
    static let size = 1 << shift
    /// Pages one datagram can span: data offsets stay below 65536.
    static let perDatagram = 65536 >> shift

    private let base: UnsafeMutableRawPointer
    private let stack: UnsafeMutablePointer<Int32>
    let pageCount: Int
    private(set) var freeCount: Int

    init(pageCount: Int) {
        self.pageCount = max(0, pageCount)
        base = .allocate(byteCount: max(1, self.pageCount) << Self.shift, alignment: 64)
        stack = .allocate(capacity: max(1, self.pageCount))
        // Lowest pages on top, so a light load touches little memory.
        for i in 0 ..< self.pageCount { stack[i] = Int32(self.pageCount - 1 - i) }
        freeCount = self.pageCount
    }

    /// Frees the slab; the owner calls this once, from its `deinit`.
    func deallocate() {
        base.deallocate()
        stack.deallocate()
    }

    /// A free page; the caller has checked `freeCount > 0`.
    @inline(__always)
    mutating func take() -> Int32 {
        freeCount -= 1
        return stack[freeCount]
    }

    @inline(__always)
    mutating func give(_ page: Int32) {
        stack[freeCount] = page
        freeCount += 1
    }

    @inline(__always)
    func pointer(_ page: Int32) -> UnsafeMutableRawPointer { base + (Int(page) << Self.shift) }
}
