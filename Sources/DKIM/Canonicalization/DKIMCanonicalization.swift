/// How header fields or the body are prepared before hashing: the halves of the `c=` tag.
///
/// - SeeAlso: RFC 6376 §3.4
public enum DKIMCanonicalization: String, Sendable, Hashable, CaseIterable {
    /// Bytes as they are, save the empty lines at the end of the body (§3.4.1, §3.4.3).
    case simple
    /// Tolerates refolding and whitespace changes (§3.4.2, §3.4.4).
    case relaxed
}

enum ASCII {
    static let cr: UInt8 = 13
    static let lf: UInt8 = 10
    static let sp: UInt8 = 32
    static let tab: UInt8 = 9
    static let colon: UInt8 = 58

    @inline(__always)
    static func isWSP(_ b: UInt8) -> Bool { b == sp || b == tab }

    @inline(__always)
    static func lowercased(_ b: UInt8) -> UInt8 { b &- 65 < 26 ? b | 0x20 : b }
}

/// Header field canonicalisation, one field at a time.
enum HeaderCanonicalization {
    /// Appends the canonical form of one field to `out`, with a final CRLF when `terminate` is
    /// set (every signed field) and without it for the DKIM-Signature field itself (RFC 6376 §3.7).
    ///
    /// - Parameters:
    ///   - field: the whole field: name, colon, value and any folding; a final CRLF is optional.
    ///   - colon: the index of the colon in `field`.
    static func append(
        _ field: UnsafeBufferPointer<UInt8>, colon: Int, using canonicalization: DKIMCanonicalization,
        terminate: Bool, to out: inout [UInt8]
    ) {
        switch canonicalization {
        case .simple:
            appendSimple(field, terminate: terminate, to: &out)
        case .relaxed:
            appendRelaxed(field, colon: colon, terminate: terminate, to: &out)
        }
    }

    /// RFC 6376 §3.4.1: the field unchanged. The CRLF that ends it in the message is part of it.
    static func appendSimple(_ field: UnsafeBufferPointer<UInt8>, terminate: Bool, to out: inout [UInt8]) {
        var end = field.count
        if end >= 2, field[end - 2] == ASCII.cr, field[end - 1] == ASCII.lf { end -= 2 }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: field[0..<end]))
        if terminate { out.append(contentsOf: [ASCII.cr, ASCII.lf]) }
    }

    /// RFC 6376 §3.4.2: lowercase the name; unfold; collapse each run of WSP into one SP; drop WSP at
    /// the end of the value and around the colon.
    static func appendRelaxed(_ field: UnsafeBufferPointer<UInt8>, colon: Int, terminate: Bool, to out: inout [UInt8]) {
        var nameEnd = colon
        while nameEnd > 0, ASCII.isWSP(field[nameEnd - 1]) { nameEnd -= 1 }
        for i in 0..<nameEnd { out.append(ASCII.lowercased(field[i])) }
        out.append(ASCII.colon)
        var pendingSpace = false
        var wroteValue = false
        var i = colon + 1
        let n = field.count
        while i < n {
            let b = field[i]
            i += 1
            // Unfolding removes the line breaks (CRLF, and a bare LF as verifiers also do); the
            // WSP that follows them stays, and is collapsed below.
            if b == ASCII.cr, i < n, field[i] == ASCII.lf { continue }
            if b == ASCII.lf { continue }
            if ASCII.isWSP(b) {
                pendingSpace = wroteValue
                continue
            }
            if pendingSpace {
                out.append(ASCII.sp)
                pendingSpace = false
            }
            out.append(b)
            wroteValue = true
        }
        if terminate { out.append(contentsOf: [ASCII.cr, ASCII.lf]) }
    }
}
