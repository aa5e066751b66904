#if canImport(Glibc)
import Glibc
#endif

/// One analyzer connected to an output: its socket, its bounded queue and
/// its counters. Plain struct in the output's array, mutated in place.
struct Reader {
    let id: ReaderID
    var fd: Int32
    var ring: EventRing
    /// The last write found the socket full: write nothing more until poll(2)
    /// reports POLLOUT (a stalled reader then costs no syscall per event).
    var blocked = false
    /// The reader shut down its sending side: stop asking for POLLIN (it
    /// would be reported forever) but keep writing until POLLHUP or EPIPE.
    var readClosed = false
    var dead = false

    var events: UInt64 = 0
    var bytes: UInt64 = 0
    var bytesWritten: UInt64 = 0
    var eventsDropped: UInt64 = 0
    var bytesDropped: UInt64 = 0
    var partialWrites: UInt64 = 0
    var bytesDiscarded: UInt64 = 0

    init(id: ReaderID, fd: Int32, queueBytes: Int) {
        self.id = id
        self.fd = fd
        ring = EventRing(capacity: queueBytes)
    }

    /// Takes one whole event or drops it whole. Returns false when dropped.
    ///
    /// With `flushThreshold == 0` and nothing queued, the event goes straight
    /// to the socket from the caller's buffers and only an unwritten tail is
    /// copied into the ring; otherwise it is appended and the ring is flushed
    /// once it holds `flushThreshold` bytes.
    @inline(__always)
    mutating func offer(_ header: UnsafeRawBufferPointer, _ body: UnsafeRawBufferPointer, total: Int,
                        flushThreshold: Int, iov: UnsafeMutablePointer<iovec>) -> Bool {
        if total > ring.free {
            eventsDropped &+= 1
            bytesDropped &+= UInt64(total)
            return false
        }
        events &+= 1
        bytes &+= UInt64(total)
        if flushThreshold == 0 && ring.isEmpty && !blocked {
            writeDirect(header, body, total: total, iov: iov)
        } else {
            ring.append(header)
            ring.append(body)
            if !blocked && ring.count >= flushThreshold { flush(iov) }
        }
        return true
    }

    @inline(__always)
    private mutating func writeDirect(_ header: UnsafeRawBufferPointer, _ body: UnsafeRawBufferPointer, total: Int,
                                      iov: UnsafeMutablePointer<iovec>) {
        var k = 0
        if let base = header.baseAddress, header.count > 0 {
            iov[k] = iovec(iov_base: UnsafeMutableRawPointer(mutating: base), iov_len: header.count)
            k += 1
        }
        if let base = body.baseAddress, body.count > 0 {
            iov[k] = iovec(iov_base: UnsafeMutableRawPointer(mutating: base), iov_len: body.count)
            k += 1
        }
        let n = UnixSocket.send(fd, iov, k)
        if n == total {
            bytesWritten &+= UInt64(n)
            return
        }
        if n >= 0 {
            // The socket filled mid-event: keep exactly the unwritten tail.
            bytesWritten &+= UInt64(n)
            if n > 0 { partialWrites &+= 1 }
            blocked = true
            if n < header.count {
                ring.append(UnsafeRawBufferPointer(rebasing: header[n...]))
                ring.append(body)
            } else {
                ring.append(UnsafeRawBufferPointer(rebasing: body[(n &- header.count)...]))
            }
        } else if n == -Int(EAGAIN) {
            blocked = true
            ring.append(header)
            ring.append(body)
        } else {
            markDead()
        }
    }

    /// One sendmsg of everything queued; resumes mid-event if the last write stopped there.
    mutating func flush(_ iov: UnsafeMutablePointer<iovec>) {
        if dead || ring.isEmpty { return }
        let offered = ring.count
        let n = UnixSocket.send(fd, iov, ring.regions(into: iov))
        if n >= 0 {
            bytesWritten &+= UInt64(n)
            ring.consume(n)
            if n < offered {
                blocked = true
                if n > 0 { partialWrites &+= 1 }
            }
        } else if n == -Int(EAGAIN) {
            blocked = true
        } else {
            markDead()
        }
    }

    /// Acts on poll(2)'s answer: discard what the analyzer wrote, drop a
    /// vanished reader, write the queue when the socket has room.
    mutating func service(_ revents: Int16, discard: UnsafeMutableRawPointer, discardBytes: Int,
                          iov: UnsafeMutablePointer<iovec>) {
        if dead { return }
        if revents & Int16(POLLERR | POLLNVAL) != 0 {
            markDead()
            return
        }
        if revents & Int16(POLLIN) != 0 && !readClosed {
            // Bounded per round so a chatty analyzer cannot starve the loop.
            for _ in 0 ..< 4 {
                let n = UnixSocket.receive(fd, discard, discardBytes)
                if n > 0 {
                    bytesDiscarded &+= UInt64(n)
                    if n < discardBytes { break }
                } else if n == 0 {
                    readClosed = true
                    break
                } else if n == -Int(EAGAIN) {
                    break
                } else {
                    markDead()
                    return
                }
            }
        }
        // POLLHUP on a UNIX stream socket means the peer closed both directions.
        if revents & Int16(POLLHUP) != 0 {
            markDead()
            return
        }
        if revents & Int16(POLLOUT) != 0 {
            blocked = false
            flush(iov)
        }
    }

    /// What poll(2) should watch for.
    @inline(__always)
    var pollEvents: Int16 {
        var events: Int16 = readClosed ? 0 : Int16(POLLIN)
        if blocked || !ring.isEmpty { events |= Int16(POLLOUT) }
        return events
    }

    /// Closes the socket now (so the peer sees EOF); the ring goes at the next sweep.
    mutating func markDead() {
        if dead { return }
        dead = true
        Glibc.close(fd)
        fd = -1
    }

    var statistics: ReaderStatistics {
        ReaderStatistics(id: id, events: events, bytes: bytes, bytesWritten: bytesWritten,
                         eventsDropped: eventsDropped, bytesDropped: bytesDropped,
                         partialWrites: partialWrites, bytesDiscarded: bytesDiscarded,
                         pendingBytes: ring.count, queueCapacity: ring.capacity)
    }
}

/// One client of an input socket and its bounded receive buffer.
struct Connection {
    let id: ConnectionID
    var fd: Int32
    let buffer: UnsafeMutableRawPointer
    let capacity: Int
    /// Bytes kept from earlier reads (the handler's unconsumed tail).
    var count = 0
    var dead = false

    init(id: ConnectionID, fd: Int32, capacity: Int) {
        self.id = id
        self.fd = fd
        self.capacity = max(1, capacity)
        buffer = .allocate(byteCount: self.capacity, alignment: 16)
    }
}
