/// The fields of a message's header section, as byte ranges, for choosing and canonicalising the
/// fields a signature covers.
///
/// Lines end in CRLF (SMTP's only line end); a line that starts with WSP continues the field above
/// it (RFC 5322 §2.2.3). An empty line ends the section.
struct HeaderSection {
    struct Field {
        /// The whole field: name through the CRLF that ends its last line (when there is one).
        var range: Range<Int>
        /// Index of the colon.
        var colon: Int
        /// The field name, ASCII-lowercased, without WSP before the colon.
        var lowercasedName: [UInt8]
    }

    let bytes: [UInt8]
    let fields: [Field]

    init(_ bytes: [UInt8]) throws(DKIMError) {
        self.bytes = bytes
        var fields: [Field] = []
        let n = bytes.count
        var i = 0
        while i < n {
            if bytes[i] == ASCII.cr, i + 1 < n, bytes[i + 1] == ASCII.lf { break }  // the empty line
            guard !ASCII.isWSP(bytes[i]) else {
                throw DKIMError(.malformedHeader, "a continuation line with no field above it at offset \(i)")
            }
            let start = i
            var colon: Int?
            var end = n
            var j = i
            while j < n {
                let b = bytes[j]
                if colon == nil, b == ASCII.colon { colon = j }
                if b == ASCII.cr, j + 1 < n, bytes[j + 1] == ASCII.lf {
                    if j + 2 < n, ASCII.isWSP(bytes[j + 2]) {
                        j += 2
                        continue
                    }
                    end = j + 2
                    break
                }
                j += 1
            }
            guard let colon, colon > start else {
                throw DKIMError(.malformedHeader, "a header line with no field name and colon at offset \(start)")
            }
            var nameEnd = colon
            while nameEnd > start, ASCII.isWSP(bytes[nameEnd - 1]) { nameEnd -= 1 }
            fields.append(Field(range: start..<end, colon: colon - start, lowercasedName: bytes[start..<nameEnd].map(ASCII.lowercased)))
            i = end
        }
        self.fields = fields
    }

    /// How many fields are named `lowercasedName`.
    func count(of lowercasedName: [UInt8]) -> Int {
        fields.reduce(0) { $0 + ($1.lowercasedName == lowercasedName ? 1 : 0) }
    }

    /// The canonical header data for `h=`: for each name in order, the next instance of it counted
    /// from the bottom; a name with no instance left adds nothing (RFC 6376 §5.4.2).
    func canonicalData(signing names: [[UInt8]], using canonicalization: DKIMCanonicalization) -> [UInt8] {
        var used: [[UInt8]: Int] = [:]
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 64)
        bytes.withUnsafeBufferPointer { buffer in
            for name in names {
                let skip = used[name, default: 0]
                used[name] = skip + 1
                var seen = 0
                for field in fields.reversed() where field.lowercasedName == name {
                    if seen == skip {
                        HeaderCanonicalization.append(
                            UnsafeBufferPointer(rebasing: buffer[field.range]), colon: field.colon,
                            using: canonicalization, terminate: true, to: &out)
                        break
                    }
                    seen += 1
                }
            }
        }
        return out
    }
}
