/// One header field of a message or body part, as it stands in the original bytes.
///
/// - SeeAlso: RFC 5322 §2.2 (header fields), §2.2.3 (long header fields: unfolding)
public struct HeaderField: Sendable, Hashable {
    /// The field name as written (`Subject`, `content-type`); compare with ``hasName(_:)``.
    public let name: String
    /// The unfolded value: every CRLF (or bare LF) that precedes WSP removed, leading and trailing
    /// whitespace trimmed. Not decoded: encoded-words stay as written (see ``decodedValue``).
    public let value: String
    /// The bytes of the whole field in the message: name, colon, value, folded lines and the final
    /// line break (absent only when the field ends the buffer).
    public let range: Range<Int>

    init(name: String, value: String, range: Range<Int>) {
        self.name = name
        self.value = value
        self.range = range
    }

    /// Whether this field's name is `name`, ignoring ASCII case (RFC 5322 §1.2.2).
    public func hasName(_ name: String) -> Bool {
        self.name.utf8.count == name.utf8.count && self.name.asciiLowercased() == name.asciiLowercased()
    }

    /// The value with RFC 2047 encoded-words decoded, for display.
    public var decodedValue: String { EncodedWord.decode(value) }
}

/// The header of a message or body part: its fields in order.
///
/// - SeeAlso: RFC 5322 §2.2, §3.6
public struct MessageHeader: Sendable, Hashable {
    /// The fields in the order they appear.
    public let fields: [HeaderField]
    /// Where new fields go: just after the last field's line break (the start of the empty line
    /// that ends the header, when there is one).
    public let endOfFields: Int

    init(fields: [HeaderField], endOfFields: Int) {
        self.fields = fields
        self.endOfFields = endOfFields
    }

    /// The first field named `name` (any case).
    public func field(_ name: String) -> HeaderField? {
        fields.first { $0.hasName(name) }
    }

    /// The unfolded value of the first field named `name`, or nil.
    public func value(_ name: String) -> String? {
        field(name)?.value
    }

    /// The unfolded values of every field named `name`, in order.
    public func values(_ name: String) -> [String] {
        fields.filter { $0.hasName(name) }.map(\.value)
    }

    /// Whether some field is named `name`.
    public func contains(_ name: String) -> Bool {
        field(name) != nil
    }

    /// The first value of `name` with RFC 2047 encoded-words decoded, for display (a `Subject`, say).
    public func decodedValue(_ name: String) -> String? {
        field(name)?.decodedValue
    }
}

/// Reads the header fields at the start of a message or body part.
///
/// Lenient (RFC 5322 §4 obsolete syntax): WSP is allowed before the colon, bare LF ends lines.
/// The header ends at the first empty line, or at the first line that is neither a field nor a
/// continuation (then the body starts at that line and a defect is noted).
enum HeaderParser {
    struct Result {
        var header: MessageHeader
        /// First byte of the body, just after the empty line (or at the line that was not a field).
        var bodyStart: Int
        var defects: [MIMEDefect]
    }

    static func parse(_ bytes: [UInt8], in range: Range<Int>, maxFields: Int) -> Result {
        var fields: [HeaderField] = []
        var defects: [MIMEDefect] = []
        var i = range.lowerBound
        let end = range.upperBound
        var endOfFields = i
        while i < end {
            let (contentEnd, next) = ASCII.line(in: bytes, from: i, end: end)
            if contentEnd == i {
                // The empty line that ends the header (RFC 5322 §2.1).
                return Result(header: MessageHeader(fields: fields, endOfFields: endOfFields), bodyStart: next, defects: defects)
            }
            guard let colon = fieldNameEnd(bytes, from: i, to: contentEnd) else {
                // Not a field: a body with no separator line (or a part with no header at all).
                if i != range.lowerBound {
                    defects.append(MIMEDefect(.missingHeaderBodySeparator, "a line that is not a header field at offset \(i)"))
                }
                return Result(header: MessageHeader(fields: fields, endOfFields: endOfFields), bodyStart: i, defects: defects)
            }
            // Continuation lines start with WSP.
            var fieldEnd = next
            while fieldEnd < end, ASCII.isWSP(bytes[fieldEnd]) {
                fieldEnd = ASCII.line(in: bytes, from: fieldEnd, end: end).next
            }
            if fields.count < maxFields {
                let nameEnd = trimWSPBackwards(bytes, from: i, to: colon.nameEnd)
                let name = String(decoding: bytes[i..<nameEnd], as: UTF8.self)
                let value = unfold(bytes, colon.valueStart..<fieldEnd)
                fields.append(HeaderField(name: name, value: value, range: i..<fieldEnd))
            } else if fields.count == maxFields, !defects.contains(where: { $0.code == .tooManyHeaderFields }) {
                defects.append(MIMEDefect(.tooManyHeaderFields, "more than \(maxFields) header fields"))
            }
            i = fieldEnd
            endOfFields = fieldEnd
        }
        return Result(header: MessageHeader(fields: fields, endOfFields: endOfFields), bodyStart: end, defects: defects)
    }

    /// For a line that is a header field, the end of its name and the start of its value.
    /// field-name = 1*ftext; ftext = %d33-57 / %d59-126 (RFC 5322 §3.6.8), then optional WSP (obs-optional).
    static func fieldNameEnd(_ bytes: [UInt8], from start: Int, to end: Int) -> (nameEnd: Int, valueStart: Int)? {
        var i = start
        while i < end {
            let b = bytes[i]
            if b == ASCII.colon {
                guard i > start else { return nil }
                return (i, i + 1)
            }
            if ASCII.isWSP(b) {
                // obs-optional: WSP between the name and the colon.
                guard i > start else { return nil }
                var j = i
                while j < end, ASCII.isWSP(bytes[j]) { j += 1 }
                guard j < end, bytes[j] == ASCII.colon else { return nil }
                return (i, j + 1)
            }
            guard b >= 33, b <= 126 else { return nil }
            i += 1
        }
        return nil
    }

    /// Unfolds a field value (RFC 5322 §2.2.3): line breaks are removed, the WSP after them kept;
    /// then leading and trailing whitespace is trimmed.
    static func unfold(_ bytes: [UInt8], _ range: Range<Int>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(range.count)
        for b in bytes[range] where b != ASCII.cr && b != ASCII.lf {
            out.append(b)
        }
        var lower = 0
        var upper = out.count
        while lower < upper, ASCII.isWSP(out[lower]) { lower += 1 }
        while upper > lower, ASCII.isWSP(out[upper - 1]) { upper -= 1 }
        return MIMECharset.decodeUnlabelled(out[lower..<upper])
    }

    private static func trimWSPBackwards(_ bytes: [UInt8], from start: Int, to end: Int) -> Int {
        var e = end
        while e > start, ASCII.isWSP(bytes[e - 1]) { e -= 1 }
        return e
    }
}
