// IPv4 (RFC 791) and IPv6 (RFC 8200 §4.5) fragment reassembly.
//
// # Model
// A datagram is keyed by (VLAN, source, destination, identification) plus
// the protocol for IPv4 (RFC 791 §3.2); IPv6 keys on addresses and the
// 32-bit identification only (RFC 8200 §4.5). The caller passes the VLAN,
// so the same id on two VLANs never merges. Each datagram under reassembly
// owns a slot in a fixed table. Its data sits in 1 KiB pages of a slab;
// which fragment supplied each byte is kept as a sorted list of extents
// (smoltcp's assembler idea), so the overlap policy can ask "who wrote
// this byte?" without per-byte state. A datagram completes when its first
// fragment (offset 0) and last fragment (MF = 0) have arrived and the
// extents cover [0, end) without a hole. The result is a whole IP packet:
//  - IPv4: the first fragment's header (with all its options), total length
//    set, MF and offset cleared (DF kept), header checksum recomputed.
//  - IPv6: the first fragment's Unfragmentable Part, Fragment header
//    removed, the Next Header field that named it set to the Fragment
//    header's Next Header, payload length set.
// It is written to one output buffer owned by the Defragmenter and is
// valid until the next call: re-decode it with linkType `.raw`.
// IPv6 atomic fragments (offset 0, M = 0) are returned at once without
// touching the table (RFC 6946).
//
// # Invariants
// - Nothing is allocated after init: slots, extents, page tables, header
//   copies, both hash tables and the output buffer are sized from the
//   config; fragment data takes pages from the slab and gives them back.
// - Bytes held (whole pages) ≤ maxTotalBytes, and per source address
//   ≤ maxBytesPerSource, at every moment: pages are reserved before a
//   fragment is stored, and a fragment that does not fit is not stored.
// - Extents of a datagram are sorted, disjoint, lie inside [0, maxEnd], and
//   their boundaries are fragment edges, so a datagram of n fragments has
//   fewer than 2n extents.
// - A reassembled datagram never exceeds 65535 bytes (IPv4 total length)
//   or a 65535-byte payload (IPv6): a fragment that would make it longer
//   abandons the datagram.
// - Every offset read from a packet is checked once, in `FragmentView`;
//   arithmetic on wire values cannot overflow (values are ≤ 65535 by then).
// - Time is packet time only (`Timestamp`); a datagram expires when more
//   than `timeoutNanoseconds` passed since its first fragment.
//
// # Limits, and what happens when each is hit
// | limit | on hit |
// |---|---|
// | timeoutNanoseconds (30 s) | datagram dropped, `datagramsExpired`; checked on lookup, for the two oldest datagrams on every call, on every cap hit, and by `expire(now:)` |
// | maxDatagrams (4096) | expired datagrams reclaimed; if none, the fragment is dropped, `drops[.datagramLimit]` |
// | maxFragmentsPerDatagram (64) | datagram abandoned, `drops[.fragmentLimit]` |
// | maxBytesPerSource (4 MiB) | expired datagrams reclaimed; if still over, datagram abandoned, `drops[.sourceLimit]` |
// | maxTotalBytes (32 MiB) | expired datagrams reclaimed; if still over, datagram abandoned, `drops[.memoryLimit]` |
// | maxUnfragmentableBytes (256) | datagram abandoned, `drops[.headerTooLong]` |
// | 65535-byte reassembly | datagram abandoned, `drops[.tooLarge]` |
// | contradictory end (teardrop, two last fragments) | datagram abandoned, `drops[.teardrop]` / `drops[.lengthConflict]` (Linux's `ip_frag_queue` does the same) |
//
// Memory is fixed at init: per slot a 256 B page table, 8 B per extent
// (2 × maxFragmentsPerDatagram), the header copy and two hash buckets,
// about 7 MiB of address space for the defaults, plus the page slab
// (maxTotalBytes). Slabs are left uninitialised, so only pages and slots
// that are used become resident.
//
// "Abandoned" frees the datagram's pages at once and counts it in
// `datagramsAbandoned`; its held fragments go to `fragmentsDiscarded`.
// Under a flood of fragments that never complete, memory therefore stays
// at the caps and new datagrams are refused until old ones expire, as
// current Linux refuses new queues above `ipfrag_high_thresh`: an attacker
// cannot evict datagrams that are nearly complete, at the price of new
// ones being refused while the flood lasts (counted, so it is visible).
//
// Anomalies that do not stop reassembly are only counted: overlaps (and
// overlaps whose bytes differ: the evasion signal), tiny fragments,
// unaligned IPv4 fragments (cut to a multiple of 8, as Linux does).
//
// # Not done
// - Overlaps are resolved by policy for IPv6 too, to see what the target
//   sees; RFC 5722 hosts drop such datagrams instead (watch
//   `overlaps`).
// - Packet timestamps that go backwards delay expiry (the oldest-first list
//   is in arrival order); the caps still bound memory.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PacketCore
import Wire

/// Reassembles IPv4 and IPv6 fragments. One instance per packet thread; not thread-safe.
public final class Defragmenter {
    /// The configuration as given (values are clamped to sane ranges when used).
    public let config: DefragmentConfig
    public private(set) var counters = DefragmentCounters()

    private let policy: OverlapPolicy
    private let timeout: Int64
    private let maxDatagrams: Int
    private let maxFragments: Int
    private let maxExtents: Int
    private let headerCapacity: Int
    private let sourcePageLimit: Int
    private let outputCapacity: Int

    private let slots: UnsafeMutablePointer<DatagramSlot>
    private let freeSlots: UnsafeMutablePointer<Int32>
    private var freeSlotCount: Int
    /// Oldest-first list of live slots, for expiry.
    private var oldest: Int32 = -1
    private var newest: Int32 = -1
    private var index: FixedTable<DatagramKey>
    /// Pages held per source address.
    private var sources: FixedTable<IPAddress>
    private var pages: PageSlab
    /// `PageSlab.perDatagram` page numbers per slot, -1 for none.
    private let pageTables: UnsafeMutablePointer<Int32>
    /// `maxExtents` extents per slot.
    private let extents: UnsafeMutablePointer<Extent>
    /// Where a merge builds the new extent list.
    private let scratch: UnsafeMutablePointer<Extent>
    private let scratchCapacity: Int
    /// `headerCapacity` bytes per slot: the first fragment's header.
    private let headers: UnsafeMutableRawPointer
    private let output: UnsafeMutableRawPointer

    public init(config: DefragmentConfig = DefragmentConfig()) {
        self.config = config
        policy = config.policy
        timeout = max(0, config.timeoutNanoseconds)
        maxDatagrams = min(max(1, config.maxDatagrams), 1 << 20)
        maxFragments = min(max(1, config.maxFragmentsPerDatagram), 1024)
        maxExtents = 2 * maxFragments
        // IPv4 headers reach 60 bytes; the cap keeps the per-slot copy small.
        headerCapacity = min(max(60, config.maxUnfragmentableBytes), 8192)
        sourcePageLimit = max(0, config.maxBytesPerSource) >> PageSlab.shift
        outputCapacity = headerCapacity + 65535

        slots = .allocate(capacity: maxDatagrams)
        slots.initialize(repeating: DatagramSlot(), count: maxDatagrams)
        freeSlots = .allocate(capacity: maxDatagrams)
        for i in 0 ..< maxDatagrams { freeSlots[i] = Int32(maxDatagrams - 1 - i) }
        freeSlotCount = maxDatagrams
        index = FixedTable(maximumCount: maxDatagrams, placeholder: DatagramKey())
        // A source holds pages only through a datagram, so there are at most maxDatagrams of them.
        sources = FixedTable(maximumCount: maxDatagrams, placeholder: .zero)
        pages = PageSlab(pageCount: max(0, config.maxTotalBytes) >> PageSlab.shift)
        pageTables = .allocate(capacity: maxDatagrams * PageSlab.perDatagram)
        extents = .allocate(capacity: maxDatagrams * maxExtents)
        scratchCapacity = maxExtents + 4
        scratch = .allocate(capacity: scratchCapacity)
        headers = .allocate(byteCount: maxDatagrams * headerCapacity, alignment: 16)
        output = .allocate(byteCount: outputCapacity, alignment: 16)
    }

    deinit {
        slots.deinitialize(count: maxDatagrams)
        slots.deallocate()
        freeSlots.deallocate()
        index.deallocate()
        sources.deallocate()
        pages.deallocate()
        pageTables.deallocate()
        extents.deallocate()
        scratch.deallocate()
        headers.deallocate()
        output.deallocate()
    }

    // MARK: - Public API

    /// Adds one fragment.
    /// - Parameters:
    ///   - packet: decoded from `bytes` by `PacketDecoder`, with `isFragment` set.
    ///   - bytes: the captured packet; the IP header is at `packet.networkOffset`.
    ///   - vlan: part of the datagram key (pass the outer VLAN id, 0 when untagged).
    ///   - timestamp: packet time; drives expiry.
    /// - Returns: `.incomplete` (held), `.complete` with the whole IP packet
    ///   (valid until the next call), or `.dropped` with the reason.
    public func process(_ packet: DecodedPacket, bytes: UnsafeRawBufferPointer, vlan: UInt16, timestamp: Timestamp) -> DefragmentResult {
        counters.fragments &+= 1
        let now = timestamp.nanoseconds
        retireExpired(now: now, limit: 2)

        let view: FragmentView
        do {
            view = try FragmentView(packet, bytes)
        } catch {
            return refuse(error)
        }
        var length = view.dataLength
        if view.more && length & 7 != 0 {
            counters.unalignedFragments &+= 1
            // RFC 8200 §4.5 discards; for IPv4, Linux and frag3 cut to the 8-byte boundary.
            if view.isIPv6 { return refuse(.unaligned) }
            length &= ~7
        }
        guard length > 0 else { return refuse(.zeroLength) }
        let end = view.offset + length
        // Data end bound before the header is known: 65535 minus the smallest header.
        guard end <= (view.isIPv6 ? 65535 : 65535 - 20) else { return refuse(.tooLarge) }
        if view.isIPv6 && view.offset == 0 && !view.more { return atomic(view, bytes) }
        if (view.more && length < config.tinyFragmentBytes) || (view.offset == 0 && !view.holdsTransportHeader(bytes)) {
            counters.tinyFragments &+= 1
        }

        let key = DatagramKey(
            source: view.source, destination: view.destination, identification: view.identification,
            vlan: vlan, proto: view.isIPv6 ? 0 : view.proto)
        var slot = -1
        if let bucket = index.find(key) {
            slot = Int(index.value(at: bucket))
            if isExpired(slot, now: now) {
                discard(slot, expired: true)
                slot = -1
            }
        }
        if slot < 0 {
            guard let fresh = acquireSlot(key, now: now) else { return refuse(.datagramLimit) }
            slot = fresh
        }
        return apply(view, length: length, end: end, slot: slot, bytes: bytes, now: now)
    }

    /// Drops every datagram whose first fragment is more than the timeout older than `now` (packet time).
    public func expire(now: Timestamp) {
        retireExpired(now: now.nanoseconds, limit: Int.max)
    }

    /// Fragment data held for `source` now, in whole pages (what `maxBytesPerSource` measures).
    public func bytesHeld(source: IPAddress) -> Int {
        guard let bucket = sources.find(source) else { return 0 }
        return Int(sources.value(at: bucket)) << PageSlab.shift
    }

    // MARK: - Datagram life cycle

    private func refuse(_ reason: DefragmentDrop) -> DefragmentResult {
        counters.drops[reason] &+= 1
        return .dropped(reason)
    }

    /// Refuses the fragment and frees its datagram.
    private func abandon(_ slot: Int, _ reason: DefragmentDrop) -> DefragmentResult {
        discard(slot, expired: false)
        return refuse(reason)
    }

    @inline(__always)
    private func isExpired(_ slot: Int, now: Int64) -> Bool {
        now &- slots[slot].created > timeout
    }

    private func retireExpired(now: Int64, limit: Int) {
        var retired = 0
        while retired < limit, oldest >= 0, isExpired(Int(oldest), now: now) {
            discard(Int(oldest), expired: true)
            retired += 1
        }
    }

    private func acquireSlot(_ key: DatagramKey, now: Int64) -> Int? {
        if freeSlotCount == 0 { retireExpired(now: now, limit: Int.max) }
        guard freeSlotCount > 0 else { return nil }
        freeSlotCount -= 1
        let slot = Int(freeSlots[freeSlotCount])
        // The index holds at most maxDatagrams keys in twice as many buckets.
        guard index.insert(key, value: Int32(slot)) != nil else {
            freeSlotCount += 1
            return nil
        }
        slots[slot] = DatagramSlot(key: key, created: now)
        (pageTables + slot * PageSlab.perDatagram).initialize(repeating: -1, count: PageSlab.perDatagram)
        slots[slot].older = newest
        if newest >= 0 { slots[Int(newest)].newer = Int32(slot) } else { oldest = Int32(slot) }
        newest = Int32(slot)
        counters.datagramsHeld += 1
        return slot
    }

    /// Frees a datagram that did not complete, counting it.
    private func discard(_ slot: Int, expired: Bool) {
        let fragments = slots[slot].fragmentCount
        if expired {
            counters.datagramsExpired &+= 1
        } else if fragments > 0 {
            counters.datagramsAbandoned &+= 1
        }
        counters.fragmentsDiscarded &+= UInt64(fragments)
        release(slot)
    }

    /// Returns a slot, its pages and its index entry.
    private func release(_ slot: Int) {
        let held = slots[slot].pages
        if held > 0 {
            let table = pageTables + slot * PageSlab.perDatagram
            for i in 0 ..< PageSlab.perDatagram where table[i] >= 0 {
                pages.give(table[i])
            }
            if let bucket = sources.find(slots[slot].key.source) {
                let left = sources.value(at: bucket) - Int32(held)
                if left > 0 { sources.setValue(left, at: bucket) } else { sources.remove(at: bucket) }
            }
            counters.bytesHeld -= held << PageSlab.shift
        }
        counters.fragmentsHeld -= slots[slot].fragmentCount
        counters.datagramsHeld -= 1
        if let bucket = index.find(slots[slot].key) { index.remove(at: bucket) }
        let older = slots[slot].older, newer = slots[slot].newer
        if older >= 0 { slots[Int(older)].newer = newer } else { oldest = newer }
        if newer >= 0 { slots[Int(newer)].older = older } else { newest = older }
        freeSlots[freeSlotCount] = Int32(slot)
        freeSlotCount += 1
    }

    // MARK: - Adding a fragment

    private func apply(_ view: FragmentView, length: Int, end: Int, slot s: Int, bytes: UnsafeRawBufferPointer, now: Int64) -> DefragmentResult {
        let start = view.offset
        guard slots[s].fragmentCount < maxFragments else { return abandon(s, .fragmentLimit) }

        // The datagram's end: set by a last fragment, never contradicted (RFC 791 §3.2, RFC 8200 §4.5).
        let knownEnd = slots[s].end
        let contradicts = view.more
            ? knownEnd >= 0 && end > knownEnd
            : (knownEnd >= 0 && knownEnd != end) || end < slots[s].maxEnd
        if contradicts { return abandon(s, overlapsHeld(s, start: start, end: end) ? .teardrop : .lengthConflict) }

        let isFirst = start == 0 && slots[s].headerLength == 0
        if isFirst && view.headerLength > headerCapacity { return abandon(s, .headerTooLong) }
        let header = isFirst ? view.headerLength : slots[s].headerLength
        // IPv4: header + data ≤ 65535 (total length). IPv6: extension headers + data ≤ 65535 (payload length).
        let limit = view.isIPv6 ? 65535 - max(0, header - 40) : 65535 - max(20, header)
        if max(end, slots[s].maxEnd) > limit { return abandon(s, .tooLarge) }

        // Reserve every page the fragment touches before storing anything.
        let table = pageTables + s * PageSlab.perDatagram
        let firstPage = start >> PageSlab.shift, lastPage = (end - 1) >> PageSlab.shift
        var needed = 0
        for p in firstPage ... lastPage where table[p] < 0 { needed += 1 }
        if needed > 0 {
            if let reason = reserve(needed, source: view.source, now: now) { return abandon(s, reason) }
            for p in firstPage ... lastPage where table[p] < 0 { table[p] = pages.take() }
            slots[s].pages += needed
            counters.bytesHeld += needed << PageSlab.shift
            counters.peakBytesHeld = max(counters.peakBytesHeld, counters.bytesHeld)
        }

        guard let base = bytes.baseAddress else { return abandon(s, .malformed) }
        var overlapped = false, differs = false
        let data = base + view.dataStart
        guard merge(s, start: start, end: end, data: data, overlapped: &overlapped, differs: &differs) else {
            return abandon(s, .fragmentLimit)
        }
        if overlapped { counters.overlaps &+= 1 }
        if differs { counters.overlapsWithDifferentData &+= 1 }
        slots[s].fragmentCount += 1
        counters.fragmentsHeld += 1
        // Counted once stored: a slot taken for a refused fragment is not a datagram held.
        counters.peakDatagramsHeld = max(counters.peakDatagramsHeld, counters.datagramsHeld)

        if isFirst {
            (headers + s * headerCapacity).copyMemory(from: base + view.ipStart, byteCount: view.headerLength)
            slots[s].headerLength = view.headerLength
            slots[s].nextHeaderField = view.nextHeaderField
            slots[s].nextHeader = view.proto
            slots[s].isIPv6 = view.isIPv6
        }
        if !view.more { slots[s].end = end }

        guard slots[s].headerLength > 0, slots[s].end >= 0, slots[s].coveredBytes == slots[s].end else { return .incomplete }
        return complete(s)
    }

    /// Nil when `needed` more pages fit under both caps (after reclaiming expired datagrams), else the cap hit.
    private func reserve(_ needed: Int, source: IPAddress, now: Int64) -> DefragmentDrop? {
        var sourceBucket = sources.find(source)
        var held = sourceBucket.map { Int(sources.value(at: $0)) } ?? 0
        if held + needed > sourcePageLimit || pages.freeCount < needed {
            retireExpired(now: now, limit: Int.max)
            sourceBucket = sources.find(source)
            held = sourceBucket.map { Int(sources.value(at: $0)) } ?? 0
        }
        if held + needed > sourcePageLimit { return .sourceLimit }
        if pages.freeCount < needed { return .memoryLimit }
        if let bucket = sourceBucket {
            sources.setValue(Int32(held + needed), at: bucket)
        } else if sources.insert(source, value: Int32(needed)) == nil {
            return .sourceLimit
        }
        return nil
    }

    private func overlapsHeld(_ s: Int, start: Int, end: Int) -> Bool {
        let list = extents + s * maxExtents
        for i in 0 ..< slots[s].extentCount where Int(list[i].start) < end && Int(list[i].end) > start {
            return true
        }
        return false
    }

    /// Lays the fragment `[start, end)` over the held extents, byte ranges
    /// going to whichever fragment the policy prefers; copies the winning
    /// bytes into the pages. False if the extent list would overflow, which
    /// the fragment limit rules out.
    private func merge(_ s: Int, start ns: Int, end ne: Int, data: UnsafeRawPointer, overlapped: inout Bool, differs: inout Bool) -> Bool {
        let list = extents + s * maxExtents
        // In-order arrival, the usual case: the fragment starts where (or after) everything held ends,
        // so it is one more extent at the tail. The walk below would copy every held extent out and
        // back for the same result, which made a datagram of n in-order fragments cost O(n²).
        let held = slots[s].extentCount
        if ne > ns && ns >= slots[s].maxEnd {
            guard held < maxExtents else { return false }
            write(s, ns: ns, data: data, from: ns, to: ne)
            list[held] = Extent(
                start: UInt16(truncatingIfNeeded: ns), end: UInt16(truncatingIfNeeded: ne),
                ownerStart: UInt16(truncatingIfNeeded: ns), ownerEnd: UInt16(truncatingIfNeeded: ne))
            slots[s].extentCount = held + 1
            slots[s].coveredBytes += ne - ns
            slots[s].maxEnd = ne
            return true
        }
        var out = 0
        var ok = true
        var cursor = ns
        for i in 0 ..< slots[s].extentCount {
            let x = list[i]
            let xs = Int(x.start), xe = Int(x.end), os = Int(x.ownerStart), oe = Int(x.ownerEnd)
            if xe <= ns {
                ok = ok && emit(xs, xe, os, oe, &out)
                continue
            }
            if xs >= ne {
                if cursor < ne {
                    write(s, ns: ns, data: data, from: cursor, to: ne)
                    ok = ok && emit(cursor, ne, ns, ne, &out)
                    cursor = ne
                }
                ok = ok && emit(xs, xe, os, oe, &out)
                continue
            }
            overlapped = true
            if xs < ns { ok = ok && emit(xs, ns, os, oe, &out) }
            let a = max(xs, ns), b = min(xe, ne)
            if cursor < a {
                write(s, ns: ns, data: data, from: cursor, to: a)
                ok = ok && emit(cursor, a, ns, ne, &out)
            }
            if !differs && !matches(s, ns: ns, data: data, from: a, to: b) { differs = true }
            if policy.newWins(newStart: ns, newEnd: ne, oldStart: os, oldEnd: oe) {
                write(s, ns: ns, data: data, from: a, to: b)
                ok = ok && emit(a, b, ns, ne, &out)
            } else {
                ok = ok && emit(a, b, os, oe, &out)
            }
            cursor = b
            if xe > ne { ok = ok && emit(ne, xe, os, oe, &out) }
        }
        if cursor < ne {
            write(s, ns: ns, data: data, from: cursor, to: ne)
            ok = ok && emit(cursor, ne, ns, ne, &out)
        }
        guard ok, out <= maxExtents else { return false }
        var covered = 0
        for i in 0 ..< out {
            list[i] = scratch[i]
            covered += Int(scratch[i].end) - Int(scratch[i].start)
        }
        slots[s].extentCount = out
        slots[s].coveredBytes = covered
        slots[s].maxEnd = out > 0 ? Int(scratch[out - 1].end) : 0
        return true
    }

    /// Appends `[a, b)` owned by fragment `[os, oe)` to the scratch list, joining a neighbour with the same owner.
    @inline(__always)
    private func emit(_ a: Int, _ b: Int, _ os: Int, _ oe: Int, _ out: inout Int) -> Bool {
        guard a < b else { return true }
        if out > 0 {
            let last = scratch[out - 1]
            if Int(last.end) == a && Int(last.ownerStart) == os && Int(last.ownerEnd) == oe {
                scratch[out - 1].end = UInt16(truncatingIfNeeded: b)
                return true
            }
        }
        guard out < scratchCapacity else { return false }
        scratch[out] = Extent(
            start: UInt16(truncatingIfNeeded: a), end: UInt16(truncatingIfNeeded: b),
            ownerStart: UInt16(truncatingIfNeeded: os), ownerEnd: UInt16(truncatingIfNeeded: oe))
        out += 1
        return true
    }

    /// Copies fragment bytes for datagram offsets `[a, b)` (the fragment starts at `ns`) into the pages.
    private func write(_ s: Int, ns: Int, data: UnsafeRawPointer, from a: Int, to b: Int) {
        let table = pageTables + s * PageSlab.perDatagram
        var at = a
        while at < b {
            let within = at & (PageSlab.size - 1)
            let n = min(b - at, PageSlab.size - within)
            (pages.pointer(table[at >> PageSlab.shift]) + within).copyMemory(from: data + (at - ns), byteCount: n)
            at += n
        }
    }

    /// True when the held bytes at `[a, b)` equal the fragment's.
    private func matches(_ s: Int, ns: Int, data: UnsafeRawPointer, from a: Int, to b: Int) -> Bool {
        let table = pageTables + s * PageSlab.perDatagram
        var at = a
        while at < b {
            let within = at & (PageSlab.size - 1)
            let n = min(b - at, PageSlab.size - within)
            if memcmp(pages.pointer(table[at >> PageSlab.shift]) + within, data + (at - ns), n) != 0 { return false }
            at += n
        }
        return true
    }

    // MARK: - Output

    /// Writes the reassembled packet to the output buffer and frees the slot.
    private func complete(_ s: Int) -> DefragmentResult {
        let header = slots[s].headerLength
        let dataLength = slots[s].end
        let total = header + dataLength
        output.copyMemory(from: headers + s * headerCapacity, byteCount: header)
        let table = pageTables + s * PageSlab.perDatagram
        var at = 0
        while at < dataLength {
            let n = min(PageSlab.size, dataLength - at)
            (output + header + at).copyMemory(from: pages.pointer(table[at >> PageSlab.shift]), byteCount: n)
            at += n
        }
        if slots[s].isIPv6 {
            finishIPv6(header: header, dataLength: dataLength, nextHeaderField: slots[s].nextHeaderField, nextHeader: slots[s].nextHeader)
        } else {
            finishIPv4(header: header, total: total)
        }
        counters.fragmentsReassembled &+= UInt64(slots[s].fragmentCount)
        release(s)
        counters.datagramsCompleted &+= 1
        return .complete(UnsafeRawBufferPointer(start: output, count: total))
    }

    /// RFC 791 §3.1: total length, flags and offset, header checksum.
    private func finishIPv4(header: Int, total: Int) {
        storeBE16(UInt16(truncatingIfNeeded: total), at: 2)
        // Keep the reserved bit and DF; clear MF and the offset.
        let field = (UInt16(output.load(fromByteOffset: 6, as: UInt8.self)) << 8) & 0xC000
        storeBE16(field, at: 6)
        storeBE16(0, at: 10)
        let sum = InternetChecksum.finish(InternetChecksum.add(UnsafeRawBufferPointer(start: output, count: header)))
        storeBE16(sum, at: 10)
    }

    /// RFC 8200 §4.5: the Fragment header's Next Header goes into the last Unfragmentable header.
    private func finishIPv6(header: Int, dataLength: Int, nextHeaderField: Int, nextHeader: UInt8) {
        output.storeBytes(of: nextHeader, toByteOffset: nextHeaderField, as: UInt8.self)
        storeBE16(UInt16(truncatingIfNeeded: header - 40 + dataLength), at: 4)
    }

    @inline(__always)
    private func storeBE16(_ value: UInt16, at offset: Int) {
        output.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    /// RFC 6946: an atomic fragment is a whole packet; strip the Fragment header and return it.
    private func atomic(_ view: FragmentView, _ bytes: UnsafeRawBufferPointer) -> DefragmentResult {
        let total = view.headerLength + view.dataLength
        guard total <= outputCapacity, let base = bytes.baseAddress else { return refuse(.tooLarge) }
        output.copyMemory(from: base + view.ipStart, byteCount: view.headerLength)
        (output + view.headerLength).copyMemory(from: base + view.dataStart, byteCount: view.dataLength)
        finishIPv6(header: view.headerLength, dataLength: view.dataLength, nextHeaderField: view.nextHeaderField, nextHeader: view.proto)
        counters.atomicFragments &+= 1
        return .complete(UnsafeRawBufferPointer(start: output, count: total))
    }
}

/// What identifies one datagram.
struct DatagramKey: Hashable, FixedTableKey {
    var source = IPAddress.zero
    var destination = IPAddress.zero
    var identification: UInt32 = 0
    var vlan: UInt16 = 0
    /// IPv4 protocol; 0 for IPv6, whose key has none.
    var proto: UInt8 = 0

    /// Every field folded in by a multiply, the seed inside the first (two keys then collide in full only
    /// for seeds an attacker cannot know), then murmur3's finaliser: fragments of one source's datagrams
    /// differ only in the identification, and without the finaliser they would share a few low bits.
    @inline(__always)
    func tableHash(seed: UInt64) -> UInt64 {
        var h = (seed ^ source.high) &* 0x9E37_79B9_7F4A_7C15
        h = (h ^ source.low) &* 0xC2B2_AE3D_27D4_EB4F
        h = (h ^ destination.high) &* 0x1656_67B1_9E37_79F9
        h = (h ^ destination.low) &* 0x9E37_79B9_7F4A_7C15
        let families: UInt64 = (source.isIPv6 ? 1 : 0) | (destination.isIPv6 ? 2 : 0)
        let small = UInt64(identification) << 32 | UInt64(vlan) << 16 | UInt64(proto) << 8 | families
        return murmur3Finalize((h ^ small) &* 0xC2B2_AE3D_27D4_EB4F)
    }
}

/// One datagram under reassembly.
struct DatagramSlot {
    var key = DatagramKey()
    /// Packet time of the first fragment, in nanoseconds.
    var created: Int64 = 0
    /// Neighbours in the oldest-first list.
    var older: Int32 = -1
    var newer: Int32 = -1
    var fragmentCount = 0
    var extentCount = 0
    /// Bytes covered by extents; equals `end` when there is no hole.
    var coveredBytes = 0
    /// End of the highest extent.
    var maxEnd = 0
    /// Data length, once a last fragment (MF = 0) arrived; -1 before.
    var end = -1
    /// Length of the stored first-fragment header; 0 until offset 0 arrived.
    var headerLength = 0
    /// IPv6: offset of the Next Header field to patch, and its value.
    var nextHeaderField = 0
    var nextHeader: UInt8 = 0
    var isIPv6 = false
    var pages = 0

    init() {}

    init(key: DatagramKey, created: Int64) {
        self.key = key
        self.created = created
    }
}

/// Datagram bytes `[start, end)` as supplied by the fragment `[ownerStart, ownerEnd)`.
/// Offsets are ≤ 65535 (checked before use), so 16 bits hold them.
struct Extent {
    var start: UInt16
    var end: UInt16
    var ownerStart: UInt16
    var ownerEnd: UInt16
}
