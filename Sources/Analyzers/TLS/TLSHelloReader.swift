/// Reassembles one direction's TLS records and handshake messages until the
/// hello that opens it (ClientHello from the client, ServerHello from the server).
///
/// Records (RFC 8446 §5.1) may arrive in any split; a handshake message may
/// span several records (§5.1: "may be fragmented across multiple records").
/// After the hello, or on an error, the direction is finished and later bytes
/// are ignored without buffering.
///
/// Limits: one record of at most 2^14 + 2048 bytes (RFC 5246 §6.2.3, the
/// ciphertext bound) plus its header, and a hello of at most `maxHandshake`
/// bytes (64 KiB); either limit ends the direction with `.tooLarge`.
struct TLSHelloReader {
    static let maxRecord = (1 << 14) + 2048
    static let maxHandshake = 64 * 1024

    enum State: Equatable {
        case reading
        case done
        case failed(TLSError)
    }

    /// 1 for ClientHello, 2 for ServerHello (RFC 8446 §4).
    let expectedType: UInt8
    private(set) var state = State.reading
    /// The current record, header included, until it is complete.
    private var record: [UInt8] = []
    /// Handshake bytes taken from records so far.
    private var handshake: [UInt8] = []

    init(expectedType: UInt8) { self.expectedType = expectedType }

    /// Feeds bytes; calls `hello` with the hello body once it is complete.
    mutating func feed(_ input: UnsafeRawBufferPointer, hello: (UnsafeRawBufferPointer) -> Bool) {
        var input = input
        while state == .reading && !input.isEmpty {
            // Complete the 5-byte header, then the fragment it announces.
            let need = record.count < 5 ? 5 - record.count
                : 5 + (Int(record[3]) << 8 | Int(record[4])) - record.count
            let take = min(need, input.count)
            record.append(contentsOf: input.slice(0, take))
            input = UnsafeRawBufferPointer(rebasing: input[take...])
            if record.count == 5 {
                // RFC 8446 §5.1: ContentType 20…24, legacy_record_version 0x03xx.
                guard (20 ... 24).contains(record[0]), record[1] == 3 else { return fail(.notTLS) }
                guard record[0] == 22 else { return fail(.unexpectedMessage) }
                let length = Int(record[3]) << 8 | Int(record[4])
                guard length <= TLSHelloReader.maxRecord else { return fail(.tooLarge) }
                if length == 0 { record.removeAll(keepingCapacity: true) }
                continue
            }
            guard record.count >= 5, record.count == 5 + (Int(record[3]) << 8 | Int(record[4])) else { continue }
            handshake.append(contentsOf: record[5...])
            record.removeAll(keepingCapacity: true)
            // RFC 8446 §4: msg_type(1), length(3), body.
            guard handshake.count >= 4 else { continue }
            guard handshake[0] == expectedType else { return fail(.unexpectedMessage) }
            let length = Int(handshake[1]) << 16 | Int(handshake[2]) << 8 | Int(handshake[3])
            guard length <= TLSHelloReader.maxHandshake else { return fail(.tooLarge) }
            guard handshake.count >= 4 + length else { continue }
            let ok = handshake.withUnsafeBytes { hello($0.slice(4, length)) }
            if ok { finish(.done) } else { fail(.malformedHello) }
        }
    }

    private mutating func fail(_ error: TLSError) { finish(.failed(error)) }

    private mutating func finish(_ state: State) {
        self.state = state
        record = []
        handshake = []
    }
}
