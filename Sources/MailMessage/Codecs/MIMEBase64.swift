/// The base64 transfer encoding as MIME uses it: tolerant decoding, 76-character lines.
///
/// - SeeAlso: RFC 2045 §6.8
public enum MIMEBase64 {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    /// Decodes base64, ignoring every character outside the alphabet (line breaks, whitespace,
    /// stray bytes) as §6.8 allows. Data ends at the first `=`; a final partial group yields the
    /// whole bytes it holds.
    public static func decode<C: Collection>(_ encoded: C) -> [UInt8] where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(encoded.count / 4 * 3)
        var quantum: UInt32 = 0
        var filled = 0
        for b in encoded {
            if b == ASCII.equals { break }
            let v = values[Int(b)]
            if v == 0xFF { continue }
            quantum = quantum << 6 | UInt32(v)
            filled += 1
            if filled == 4 {
                out.append(UInt8(truncatingIfNeeded: quantum >> 16))
                out.append(UInt8(truncatingIfNeeded: quantum >> 8))
                out.append(UInt8(truncatingIfNeeded: quantum))
                quantum = 0
                filled = 0
            }
        }
        switch filled {
        case 2:
            out.append(UInt8(truncatingIfNeeded: quantum >> 4))
        case 3:
            out.append(UInt8(truncatingIfNeeded: quantum >> 10))
            out.append(UInt8(truncatingIfNeeded: quantum >> 2))
        default:
            break // 0, or 1 stray character that holds no whole byte
        }
        return out
    }

    /// Encodes bytes as base64 in lines of 76 characters separated by CRLF, with no line break
    /// after the last line.
    public static func encode<C: Collection>(_ data: C) -> [UInt8] where C.Element == UInt8 {
        let groupsPerLine = MessageLineLimits.maxEncodedLineLength / 4
        var out: [UInt8] = []
        out.reserveCapacity((data.count + 2) / 3 * 4 + data.count / 57 * 2 + 2)
        var groups = 0
        var iterator = data.makeIterator()
        while let b0 = iterator.next() {
            let b1 = iterator.next()
            let b2 = iterator.next()
            if groups == groupsPerLine {
                out.append(contentsOf: ASCII.crlf)
                groups = 0
            }
            let n = UInt32(b0) << 16 | UInt32(b1 ?? 0) << 8 | UInt32(b2 ?? 0)
            out.append(alphabet[Int(n >> 18 & 0x3F)])
            out.append(alphabet[Int(n >> 12 & 0x3F)])
            out.append(b1 == nil ? ASCII.equals : alphabet[Int(n >> 6 & 0x3F)])
            out.append(b2 == nil ? ASCII.equals : alphabet[Int(n & 0x3F)])
            groups += 1
            if b2 == nil { break }
        }
        return out
    }
}
