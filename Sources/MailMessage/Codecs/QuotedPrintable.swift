/// The quoted-printable transfer encoding.
///
/// - SeeAlso: RFC 2045 §6.7
public enum QuotedPrintable {
    /// Decodes a quoted-printable body. Lenient as §6.7 asks of decoders: trailing whitespace on a
    /// line is dropped (rule 3), lowercase hex is read, and an `=` not followed by two hex digits is
    /// kept as it is. Hard line breaks (CRLF or a bare LF) decode to CRLF; soft ones (`=` at the end
    /// of a line) to nothing.
    public static func decode<C: Collection>(_ encoded: C) -> [UInt8] where C.Element == UInt8 {
        encoded.withContiguousStorageIfAvailable(decode(buffer:)) ?? Array(encoded).withUnsafeBufferPointer(decode(buffer:))
    }

    private static func decode(buffer encoded: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        let end = encoded.count
        // Decoding never grows the data, except that a bare LF becomes CRLF.
        return [UInt8](unsafeUninitializedCapacity: end * 2) { out, count in
            var o = 0
            var lineStart = 0
            while lineStart < end {
                // One line: [lineStart, contentEnd) followed by a line break ending at `next`.
                var contentEnd = lineStart
                while contentEnd < end, encoded[contentEnd] != ASCII.lf { contentEnd += 1 }
                let hasBreak = contentEnd < end
                let next = hasBreak ? contentEnd + 1 : end
                if hasBreak, contentEnd > lineStart, encoded[contentEnd - 1] == ASCII.cr { contentEnd -= 1 }
                // Rule 3: whitespace at the end of an encoded line was added in transport.
                while contentEnd > lineStart, ASCII.isWSP(encoded[contentEnd - 1]) { contentEnd -= 1 }
                var softBreak = false
                var i = lineStart
                while i < contentEnd {
                    let b = encoded[i]
                    if b == ASCII.equals {
                        if i + 1 == contentEnd {
                            softBreak = true
                            break
                        }
                        if i + 2 < contentEnd, let hi = ASCII.hexValue(encoded[i + 1]), let lo = ASCII.hexValue(encoded[i + 2]) {
                            out[o] = hi << 4 | lo
                            o += 1
                            i += 3
                            continue
                        }
                    }
                    out[o] = b
                    o += 1
                    i += 1
                }
                if hasBreak && !softBreak {
                    out[o] = ASCII.cr
                    out[o + 1] = ASCII.lf
                    o += 2
                }
                lineStart = next
            }
            count = o
        }
    }

    /// Encodes bytes of text as quoted-printable: lines of at most 76 characters with soft line
    /// breaks, CRLF (or a bare LF) in the input as a hard line break (CRLF), every other control
    /// byte, `=` and byte ≥ 0x80 as `=XX`, whitespace before a line break as `=20`/`=09`.
    ///
    /// No encoded line starts with `--`: a `-` that would start one is written `=2D`, so that no
    /// line can look like a multipart delimiter (RFC 2046 §5.1.1), whatever the text holds.
    public static func encode<C: Collection>(_ data: C) -> [UInt8] where C.Element == UInt8 {
        data.withContiguousStorageIfAvailable(encode(buffer:)) ?? Array(data).withUnsafeBufferPointer(encode(buffer:))
    }

    /// How each byte is written (rule 2): 0 itself, 1 itself unless last on a line (space, tab),
    /// 2 as `=XX`, 3 itself unless it would start a line with `--` (`-`).
    private static let byteClass: [UInt8] = (0..<256).map { b in
        switch b {
        case 0x20, 0x09: 1
        case 0x2D: 3
        case 33...60, 62...126: 0
        default: 2
        }
    }

    private static func encode(buffer data: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        let maxLine = MessageLineLimits.maxEncodedLineLength
        let end = data.count
        // Worst case: every byte as =XX, plus a soft break per 25 of them.
        let capacity = end * 3 + (end * 3 / (maxLine - 1) + 1) * 3 + 8
        return byteClass.withUnsafeBufferPointer { byteClass in
            ASCII.upperHexDigits.withUnsafeBufferPointer { hex in
                [UInt8](unsafeUninitializedCapacity: capacity) { out, count in
                    var o = 0
                    var i = 0
                    while i < end {
                        // One hard line: [i, lineEnd), then a line break of `breakLength` bytes (0 at the end).
                        var lineEnd = i
                        while lineEnd < end, data[lineEnd] != ASCII.lf { lineEnd += 1 }
                        var breakLength = lineEnd < end ? 1 : 0
                        if breakLength == 1, lineEnd > i, data[lineEnd - 1] == ASCII.cr {
                            lineEnd -= 1
                            breakLength = 2
                        }
                        var lineLength = 0
                        while i < lineEnd {
                            let b = data[i]
                            let lastOnLine = i + 1 == lineEnd
                            let isLiteral: Bool
                            switch byteClass[Int(b)] {
                            case 0: isLiteral = true
                            case 1: isLiteral = !lastOnLine
                            case 3: isLiteral = !(lineLength == 0 && i + 1 < lineEnd && data[i + 1] == ASCII.hyphen)
                            default: isLiteral = false
                            }
                            let width = isLiteral ? 1 : 3
                            // Leave room for the "=" of a soft break unless this is the line's last character.
                            if lineLength + width > (lastOnLine ? maxLine : maxLine - 1) {
                                out[o] = ASCII.equals
                                out[o + 1] = ASCII.cr
                                out[o + 2] = ASCII.lf
                                o += 3
                                lineLength = 0
                                continue // re-evaluate: a "--" now starting the line is escaped
                            }
                            if isLiteral {
                                out[o] = b
                                o += 1
                            } else {
                                out[o] = ASCII.equals
                                out[o + 1] = hex[Int(b >> 4)]
                                out[o + 2] = hex[Int(b & 0x0F)]
                                o += 3
                            }
                            lineLength += width
                            i += 1
                        }
                        if breakLength > 0 {
                            out[o] = ASCII.cr
                            out[o + 1] = ASCII.lf
                            o += 2
                        }
                        i = lineEnd + breakLength
                    }
                    count = o
                }
            }
        }
    }
}
