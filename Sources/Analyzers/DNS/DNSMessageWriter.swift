import Outputs
import PacketCore

/// Why a DNS message could not be decoded. A closed set, counted per code
/// (the Zeek "weird" idea); the record carries `name` as its "error" value.
public enum DNSError: UInt8, CaseIterable, Sendable, Error {
    /// The message ends before the header, a section or an RDATA does.
    case truncated
    /// A label length byte with the reserved top bits 01 or 10 (RFC 1035 §4.1.4, RFC 6891 §5).
    case badLabelType
    /// A compression pointer that does not point before the name part holding it,
    /// or more than `DNSMessageWriter.maxPointerJumps` jumps.
    case compressionLoop
    /// A name longer than 255 octets (RFC 1035 §2.3.4).
    case nameTooLong
    /// An RDATA whose length does not fit its type (A not 4 bytes, names running past RDLENGTH, …).
    case badRdataLength
    /// A TCP length prefix below the 12-byte header (RFC 1035 §4.2.2).
    case badTCPLength

    public var name: String {
        switch self {
        case .truncated: "truncated"
        case .badLabelType: "bad_label_type"
        case .compressionLoop: "compression_loop"
        case .nameTooLong: "name_too_long"
        case .badRdataLength: "bad_rdata_length"
        case .badTCPLength: "bad_tcp_length"
        }
    }
}

/// Decodes one DNS message (RFC 1035 §4.1) straight into a `JSONWriter`.
///
/// There is no intermediate model: the fields are appended as they are read,
/// and on an error the caller discards the half-written record and writes an
/// error record instead. Every read is bounds-checked against the message,
/// and name decompression terminates by construction (see `name(at:)`).
///
/// Shape (SF-TAP `dns/main.cpp`, spec §7): header flags and codes as numbers
/// ("qr":1) with the RCODE's mnemonic as "rcode_name" ("NXDOMAIN"), section counts as `*_count`, and per record "name", "type"
/// (number), "type_name" (mnemonic, or "TYPE<n>" per RFC 3597 §5), "class"
/// (number), "ttl", then the type's RDATA fields. Names are in presentation
/// form without the trailing dot ("www.example.com"; the root is ".");
/// bytes outside printable ASCII, '.' and '\' inside a label are escaped as
/// RFC 1035 §5.1 `\DDD` / `\.` / `\\`.
struct DNSMessageWriter {
    /// Bound on compression pointers followed per name. Pointers must also
    /// point strictly backwards, so this is belt and braces.
    static let maxPointerJumps = 64

    let bytes: UnsafeRawBufferPointer
    /// Reused buffer for the current name's presentation text.
    var scratch: [UInt8]

    /// Question entries and resource records written so far (in message order).
    private(set) var entries = 0
    /// Entries to write at most; later ones are left out (the arrays end early).
    let limit: Int

    init(bytes: UnsafeRawBufferPointer, scratch: [UInt8], limit: Int = .max) {
        self.bytes = bytes
        self.scratch = scratch
        self.limit = limit
    }

    /// Appends the message fields (after "type"/"time"/endpoints) to `w`. On an
    /// error, `entries` tells how many entries decoded before it: writing again
    /// with that `limit` gives the record up to the bad entry.
    mutating func write(into w: inout JSONWriter) -> DNSError? {
        // RFC 1035 §4.1.1: the 12-byte header.
        guard bytes.count >= 12 else { return .truncated }
        let flags = bytes.beUInt16(at: 2)
        w.number("id", Int(bytes.beUInt16(at: 0)))
        w.number("qr", Int(flags >> 15))
        w.number("op", Int((flags >> 11) & 0xF))
        w.number("aa", Int((flags >> 10) & 1))
        w.number("tc", Int((flags >> 9) & 1))
        w.number("rd", Int((flags >> 8) & 1))
        w.number("ra", Int((flags >> 7) & 1))
        w.number("z", Int((flags >> 6) & 1))
        w.number("ad", Int((flags >> 5) & 1)) // RFC 4035 §3.2.3
        w.number("cd", Int((flags >> 4) & 1)) // RFC 4035 §3.2.2
        w.number("rc", Int(flags & 0xF))
        w.string("rcode_name", DNSMessageWriter.rcodeName(flags & 0xF))
        w.number("query_count", count(0))
        w.number("answer_count", count(1))
        w.number("authority_count", count(2))
        w.number("additional_count", count(3))

        var offset = 12
        // RFC 1035 §4.1.2: question entries.
        w.beginArray("query")
        for _ in 0 ..< count(0) where entries < limit {
            guard let next = name(at: offset) else { return failure }
            guard next + 4 <= bytes.count else { return .truncated }
            let type = bytes.beUInt16(at: next)
            w.beginObject()
            w.string("name", scratch)
            w.number("type", Int(type))
            w.string("type_name", DNSMessageWriter.typeName(type))
            w.number("class", Int(bytes.beUInt16(at: next + 2)))
            w.endObject()
            offset = next + 4
            entries += 1
        }
        w.endArray()

        // RFC 1035 §4.1.3: answer, authority and additional resource records.
        for (section, key) in DNSMessageWriter.recordSections.enumerated() {
            w.beginArray(key)
            for _ in 0 ..< count(section + 1) where entries < limit {
                switch resourceRecord(at: offset, into: &w) {
                case .success(let next):
                    offset = next
                    entries += 1
                case .failure(let error): return error
                }
            }
            w.endArray()
        }
        return nil
    }

    /// The header's RCODE by its IANA mnemonic (RFC 1035 §4.1.1, RFC 2136 §2.2, RFC 8490 §10.2), as Suricata
    /// and Zeek print it; unassigned codes as "RCODE<n>".
    static func rcodeName(_ code: UInt16) -> String {
        switch code {
        case 0: "NOERROR"
        case 1: "FORMERR"
        case 2: "SERVFAIL"
        case 3: "NXDOMAIN"
        case 4: "NOTIMP"
        case 5: "REFUSED"
        case 6: "YXDOMAIN"
        case 7: "YXRRSET"
        case 8: "NXRRSET"
        case 9: "NOTAUTH"
        case 10: "NOTZONE"
        case 11: "DSOTYPENI"
        default: "RCODE\(code)"
        }
    }

    /// The record sections after the question, in message order (RFC 1035 §4.1).
    private static let recordSections: [StaticString] = ["answer", "authority", "additional"]

    /// QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT (RFC 1035 §4.1.1) by section index 0…3;
    /// the caller has checked the 12-byte header is there.
    private func count(_ section: Int) -> Int { Int(bytes.beUInt16(at: 4 &+ 2 &* section)) }

    /// The error of the last failed `name(at:)`.
    private var failure: DNSError = .truncated

    private mutating func resourceRecord(at start: Int, into w: inout JSONWriter) -> Result<Int, DNSError> {
        guard let fixed = name(at: start) else { return .failure(failure) }
        // TYPE, CLASS, TTL, RDLENGTH: 10 bytes.
        guard fixed + 10 <= bytes.count else { return .failure(.truncated) }
        let type = bytes.beUInt16(at: fixed)
        let rdlength = Int(bytes.beUInt16(at: fixed + 8))
        let rdata = fixed + 10
        let end = rdata + rdlength
        guard end <= bytes.count else { return .failure(.truncated) }
        w.beginObject()
        w.string("name", scratch)
        w.number("type", Int(type))
        w.string("type_name", DNSMessageWriter.typeName(type))
        w.number("class", Int(bytes.beUInt16(at: fixed + 2)))
        w.number("ttl", Int(bytes.beUInt32(at: fixed + 4)))
        // RFC 2136 §2.4–2.5: update prerequisites and deletions (class ANY or NONE) may carry no RDATA.
        let rrClass = bytes.beUInt16(at: fixed + 2)
        if rdlength == 0 && (rrClass == 255 || rrClass == 254) {
            w.endObject()
            return .success(end)
        }
        if let error = rdataFields(type: type, start: rdata, end: end, into: &w) { return .failure(error) }
        w.endObject()
        return .success(end)
    }

    /// RFC 1035 §3.3 / RFC 3596 §2.2 RDATA layouts; anything else is "rr" (hex).
    private mutating func rdataFields(type: UInt16, start: Int, end: Int, into w: inout JSONWriter) -> DNSError? {
        switch type {
        case 1: // A, §3.4.1
            guard end - start == 4 else { return .badRdataLength }
            w.string("a", IPAddress.ipv4(bytes, at: start).description)
        case 28: // AAAA, RFC 3596 §2.2
            guard end - start == 16 else { return .badRdataLength }
            w.string("aaaa", IPAddress.ipv6(bytes, at: start).description)
        case 2, 5, 12: // NS §3.3.11, CNAME §3.3.1, PTR §3.3.12
            guard let next = name(at: start) else { return failure }
            guard next == end else { return .badRdataLength }
            w.string(type == 2 ? "ns" : type == 5 ? "cname" : "ptr", scratch)
        case 15: // MX, §3.3.9: PREFERENCE then EXCHANGE
            guard end - start >= 3 else { return .badRdataLength }
            guard let next = name(at: start + 2) else { return failure }
            guard next == end else { return .badRdataLength }
            w.number("preference", Int(bytes.beUInt16(at: start)))
            w.string("exchange", scratch)
            w.string("mx", scratch)
        case 16: // TXT, §3.3.14: one or more <character-string>s
            w.beginArray("txt")
            var at = start
            while at < end {
                let length = Int(bytes[at])
                guard at + 1 + length <= end else { return .badRdataLength }
                w.string(nil, bytes: UnsafeRawBufferPointer(rebasing: bytes[at + 1 ..< at + 1 + length]))
                at += 1 + length
            }
            w.endArray()
        case 6: // SOA, §3.3.13
            guard let afterMname = name(at: start) else { return failure }
            guard afterMname < end else { return .badRdataLength }
            w.string("mname", scratch)
            guard let afterRname = name(at: afterMname) else { return failure }
            guard afterRname + 20 == end else { return .badRdataLength }
            w.string("rname", scratch)
            w.number("serial", Int(bytes.beUInt32(at: afterRname)))
            w.number("refresh", Int(bytes.beUInt32(at: afterRname + 4)))
            w.number("retry", Int(bytes.beUInt32(at: afterRname + 8)))
            w.number("expire", Int(bytes.beUInt32(at: afterRname + 12)))
            w.number("minimum", Int(bytes.beUInt32(at: afterRname + 16)))
        default:
            w.string("rr", DNSMessageWriter.hex(UnsafeRawBufferPointer(rebasing: bytes[start ..< end])))
        }
        return nil
    }

    /// Decodes the (possibly compressed) name at `start` into `scratch` and
    /// returns the offset after it in the message, or nil with `failure` set.
    ///
    /// Termination: a pointer (RFC 1035 §4.1.4) must point before the start of
    /// the label run that holds it, so the start of each run strictly
    /// decreases; a loop (to itself, or A→B→A) breaks that rule.
    private mutating func name(at start: Int) -> Int? {
        scratch.removeAll(keepingCapacity: true)
        var at = start
        var runStart = start
        var after: Int? = nil
        var jumps = 0
        var wireLength = 0
        while true {
            guard at < bytes.count else { failure = .truncated; return nil }
            let length = Int(bytes[at])
            switch length & 0xC0 {
            case 0xC0:
                guard at + 1 < bytes.count else { failure = .truncated; return nil }
                let target = Int(bytes.beUInt16(at: at) & 0x3FFF)
                jumps += 1
                guard target < runStart, jumps <= DNSMessageWriter.maxPointerJumps else {
                    failure = .compressionLoop; return nil
                }
                if after == nil { after = at + 2 }
                at = target
                runStart = target
            case 0x00:
                wireLength += length + 1
                guard wireLength <= 255 else { failure = .nameTooLong; return nil }
                if length == 0 {
                    if scratch.isEmpty { scratch.append(UInt8(ascii: ".")) }
                    return after ?? at + 1
                }
                guard at + 1 + length <= bytes.count else { failure = .truncated; return nil }
                if !scratch.isEmpty { scratch.append(UInt8(ascii: ".")) }
                let label = UnsafeRawBufferPointer(rebasing: bytes[(at + 1) ..< (at + 1 + length)])
                // Most labels need no escaping: copied at once rather than a byte and a uniqueness test at a time.
                if label.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E && $0 != UInt8(ascii: ".") && $0 != UInt8(ascii: "\\") }) {
                    scratch.append(contentsOf: label)
                } else {
                    for byte in label { DNSMessageWriter.appendEscaped(byte, to: &scratch) }
                }
                at += 1 + length
            default:
                failure = .badLabelType; return nil
            }
        }
    }

    /// RFC 1035 §5.1 presentation escaping for one label byte.
    private static func appendEscaped(_ byte: UInt8, to out: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "."), UInt8(ascii: "\\"):
            out.append(UInt8(ascii: "\\")); out.append(byte)
        case 0x21 ... 0x7E:
            out.append(byte)
        default:
            out.append(UInt8(ascii: "\\"))
            out.append(UInt8(ascii: "0") + byte / 100)
            out.append(UInt8(ascii: "0") + (byte / 10) % 10)
            out.append(UInt8(ascii: "0") + byte % 10)
        }
    }

    static func hex(_ raw: UnsafeRawBufferPointer) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count * 2)
        for byte in raw {
            out.append(hexDigit(byte >> 4))
            out.append(hexDigit(byte & 0xF))
        }
        return out
    }

    /// IANA "Resource Record (RR) TYPEs" mnemonics for common types.
    static func typeName(_ type: UInt16) -> String {
        switch type {
        case 1: "A"
        case 2: "NS"
        case 5: "CNAME"
        case 6: "SOA"
        case 12: "PTR"
        case 10: "NULL"
        case 13: "HINFO"
        case 15: "MX"
        case 16: "TXT"
        case 28: "AAAA"
        case 17: "RP"
        case 29: "LOC"
        case 33: "SRV"
        case 35: "NAPTR"
        case 39: "DNAME"
        case 41: "OPT"
        case 43: "DS"
        case 44: "SSHFP"
        case 46: "RRSIG"
        case 47: "NSEC"
        case 48: "DNSKEY"
        case 50: "NSEC3"
        case 51: "NSEC3PARAM"
        case 52: "TLSA"
        case 64: "SVCB"
        case 65: "HTTPS"
        case 250: "TSIG"
        case 251: "IXFR"
        case 252: "AXFR"
        case 255: "ANY"
        case 257: "CAA"
        default: "TYPE\(type)" // RFC 3597 §5
        }
    }
}
