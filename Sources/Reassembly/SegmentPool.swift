/// Fixed-size pages for out-of-order TCP data, shared by every flow.
///
/// A buffered segment is a chain of nodes, each holding up to `pageSize`
/// bytes in its own page; node `i` owns page `i`. Pages come in chunks of
/// `pagesPerChunk` allocated on demand, never more than `maxPages` in all —
/// that is the global reassembly memcap. Freed nodes go on a free list and
/// are reused, so steady-state buffering allocates nothing.
public struct SegmentPool {
    public static let pageSize = 2048
    static let pagesPerChunk = 1024

    @usableFromInline
    struct Node {
        var sequence: UInt32 = 0
        var length: UInt16 = 0
        var next: Int32 = -1
    }

    @usableFromInline var nodes: [Node] = []
    private var chunks: [UnsafeMutableRawPointer] = []
    private var freeHead: Int32 = -1
    public let maxPages: Int
    /// Above this many pages in use (three quarters of the pool), heavy directions make room from their own holes.
    public let pressurePages: Int
    public private(set) var pagesInUse = 0
    public private(set) var peakPagesInUse = 0

    public init(maxBytes: Int) {
        maxPages = max(Self.pagesPerChunk, maxBytes / Self.pageSize)
        pressurePages = maxPages - maxPages / 4
    }

    /// Releases the chunks; the pool must not be used afterwards.
    public mutating func deallocate() {
        for chunk in chunks { chunk.deallocate() }
        chunks.removeAll()
        nodes.removeAll()
        freeHead = -1
        pagesInUse = 0
    }

    public var bytesReserved: Int { chunks.count * Self.pagesPerChunk * Self.pageSize }

    /// A free node, or -1 when the memcap is reached.
    @usableFromInline
    mutating func allocate() -> Int32 {
        if freeHead >= 0 {
            let node = freeHead
            freeHead = nodes[Int(node)].next
            nodes[Int(node)] = Node()
            pagesInUse += 1
            peakPagesInUse = max(peakPagesInUse, pagesInUse)
            return node
        }
        guard nodes.count < maxPages else { return -1 }
        if nodes.count == chunks.count * Self.pagesPerChunk {
            chunks.append(UnsafeMutableRawPointer.allocate(byteCount: Self.pagesPerChunk * Self.pageSize, alignment: 64))
            if nodes.capacity < chunks.count * Self.pagesPerChunk {
                nodes.reserveCapacity(min(maxPages, max(chunks.count * Self.pagesPerChunk, nodes.capacity * 2)))
            }
        }
        nodes.append(Node())
        pagesInUse += 1
        peakPagesInUse = max(peakPagesInUse, pagesInUse)
        return Int32(nodes.count - 1)
    }

    @usableFromInline
    mutating func free(_ node: Int32) {
        nodes[Int(node)].next = freeHead
        freeHead = node
        pagesInUse -= 1
    }

    @usableFromInline
    func page(_ node: Int32) -> UnsafeMutableRawPointer {
        let i = Int(node)
        return chunks[i / Self.pagesPerChunk] + (i % Self.pagesPerChunk) * Self.pageSize
    }

    @usableFromInline
    func bytes(_ node: Int32) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: page(node), count: Int(nodes[Int(node)].length))
    }
}
