// Unaligned, bounds-unchecked loads for wire parsing.
//
// Callers check a length once (the "checked view" idea) and then read with
// these helpers; they never trap on alignment and compile to single loads.

extension UnsafeRawBufferPointer {
    /// Big-endian 16-bit load at `offset`. The caller has checked `offset + 2 <= count`.
    @inlinable @inline(__always)
    public func beUInt16(at offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// Big-endian 32-bit load at `offset`. The caller has checked `offset + 4 <= count`.
    @inlinable @inline(__always)
    public func beUInt32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// Big-endian 64-bit load at `offset`. The caller has checked `offset + 8 <= count`.
    @inlinable @inline(__always)
    public func beUInt64(at offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// Little-endian 16-bit load at `offset`.
    @inlinable @inline(__always)
    public func leUInt16(at offset: Int) -> UInt16 {
        UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// Little-endian 32-bit load at `offset`.
    @inlinable @inline(__always)
    public func leUInt32(at offset: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// 32-bit load in the given byte order.
    @inlinable @inline(__always)
    public func uint32(at offset: Int, bigEndian: Bool) -> UInt32 {
        bigEndian ? beUInt32(at: offset) : leUInt32(at: offset)
    }

    /// 16-bit load in the given byte order.
    @inlinable @inline(__always)
    public func uint16(at offset: Int, bigEndian: Bool) -> UInt16 {
        bigEndian ? beUInt16(at: offset) : leUInt16(at: offset)
    }

    /// A sub-buffer; the caller has checked the range lies inside `self`.
    @inlinable @inline(__always)
    public func slice(_ offset: Int, _ length: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[offset ..< offset + length])
    }
}
