/// A message as raw bytes with its MIME part tree.
///
/// Parsing never fails and never copies the body: every part knows the byte ranges of its header
/// and body in ``bytes``. Read leniently (bare LF ends lines); Tern writes only CRLF.
///
/// - SeeAlso: RFC 5322 §2 (message format), RFC 2045–2046 (MIME)
public struct MailMessage: Sendable {
    /// The message exactly as given.
    public let bytes: [UInt8]
    /// The message itself as the root part: its header is the message header.
    public let root: MIMEPart

    public init(_ bytes: [UInt8], limits: MIMELimits = MIMELimits()) {
        self.bytes = bytes
        self.root = MIMEParser.parse(bytes, limits: limits)
    }

    /// The message header.
    public var header: MessageHeader { root.header }

    /// Every part, depth-first, the root first.
    public var allParts: [MIMEPart] { root.allParts }

    /// The id inside `Message-ID: <id>`, without the angle brackets (RFC 5322 §3.6.4).
    public var messageID: String? {
        guard let value = header.value("Message-ID") else { return nil }
        let stripped = AddressReader.removingComments(value).trimmingMailWhitespace()
        guard !stripped.isEmpty else { return nil }
        if stripped.hasPrefix("<"), let close = stripped.firstIndex(of: ">") {
            let id = stripped[stripped.index(after: stripped.startIndex)..<close]
            return id.isEmpty ? nil : String(id)
        }
        return stripped
    }

    /// The first addr-spec of `From:` (`a@b.example` from `Name <a@b.example>` or `a@b.example (Name)`).
    ///
    /// - SeeAlso: RFC 5322 §3.4 (address specification), §3.6.2 (originator fields)
    public var fromAddress: String? {
        header.value("From").flatMap(AddressReader.firstAddrSpec(in:))
    }

    /// The domain of ``fromAddress``, lowercase: what DMARC aligns and DKIM signs for
    /// (RFC 7489 §3.1 calls it the RFC5322.From domain).
    public var fromDomain: String? {
        header.value("From").flatMap(Self.domain(ofAddressField:))
    }

    /// A header value with its RFC 5322 §3.2.2 comments removed; quoted strings are kept,
    /// comments nest.
    public static func removingComments(_ value: String) -> String {
        AddressReader.removingComments(value)
    }

    /// The lowercase domain of the first address in an address field's (unfolded) value:
    /// `example.com` from `Name <a@Example.COM>, b@c.example`.
    public static func domain(ofAddressField value: String) -> String? {
        guard let address = AddressReader.firstAddrSpec(in: value), let at = AddressReader.lastAt(in: address) else { return nil }
        let domain = String(address[address.index(after: at)...]).trimmingMailWhitespace()
        return domain.isEmpty ? nil : domain.asciiLowercased()
    }

    /// A part's body bytes, still transfer-encoded.
    public func body(of part: MIMEPart) -> ArraySlice<UInt8> {
        bytes[part.bodyRange]
    }

    /// A part's body with its transfer encoding undone; nil for an encoding Tern does not know.
    public func decodedBody(of part: MIMEPart) -> [UInt8]? {
        let body = bytes[part.bodyRange]
        switch part.transferEncoding {
        case .base64: return MIMEBase64.decode(body)
        case .quotedPrintable: return QuotedPrintable.decode(body)
        case .sevenBit, .eightBit, .binary: return Array(body)
        case .other: return nil
        }
    }
}

/// Enough of RFC 5322 §3.4 to find the first addr-spec in an address list.
enum AddressReader {
    /// The first addr-spec: the content of the first `<…>` outside quotes and comments, or else the
    /// first comma-separated item with comments removed. Group names (`Team: a@b;`) are skipped.
    static func firstAddrSpec(in value: String) -> String? {
        let bytes = Array(value.utf8)
        var plain: [UInt8] = [] // the current item, comments removed, quotes kept
        var i = 0
        var depth = 0
        var inQuote = false
        while i < bytes.count {
            let b = bytes[i]
            if inQuote {
                plain.append(b)
                if b == UInt8(ascii: "\\"), i + 1 < bytes.count {
                    plain.append(bytes[i + 1])
                    i += 1
                } else if b == UInt8(ascii: "\"") {
                    inQuote = false
                }
            } else if depth > 0 {
                if b == UInt8(ascii: "\\") { i += 1 }
                else if b == UInt8(ascii: "(") { depth += 1 }
                else if b == UInt8(ascii: ")") { depth -= 1 }
            } else {
                switch b {
                case UInt8(ascii: "\""):
                    inQuote = true
                    plain.append(b)
                case UInt8(ascii: "("):
                    depth = 1
                    plain.append(ASCII.space)
                case UInt8(ascii: "<"):
                    guard let close = bytes[(i + 1)...].firstIndex(of: UInt8(ascii: ">")) else { return nil }
                    let inner = stripRoute(String(decoding: bytes[(i + 1)..<close], as: UTF8.self))
                    return inner.isEmpty ? nil : inner
                case UInt8(ascii: ":"):
                    plain.removeAll() // a group's display name
                case UInt8(ascii: ","), UInt8(ascii: ";"):
                    if let spec = addrSpec(plain) { return spec }
                    plain.removeAll()
                default:
                    plain.append(b)
                }
            }
            i += 1
        }
        return addrSpec(plain)
    }

    private static func addrSpec(_ bytes: [UInt8]) -> String? {
        let text = String(decoding: bytes, as: UTF8.self).trimmingMailWhitespace()
        guard !text.isEmpty, lastAt(in: text) != nil else { return nil }
        return text
    }

    /// obs-route (`@a,@b:`) before the addr-spec inside angle brackets (RFC 5322 §4.4).
    private static func stripRoute(_ spec: String) -> String {
        let trimmed = spec.trimmingMailWhitespace()
        guard trimmed.hasPrefix("@"), let colon = trimmed.firstIndex(of: ":") else { return trimmed }
        return String(trimmed[trimmed.index(after: colon)...]).trimmingMailWhitespace()
    }

    /// The `@` that separates local part and domain: the last one outside a quoted local part.
    static func lastAt(in address: String) -> String.Index? {
        var inQuote = false
        var last: String.Index? = nil
        var index = address.startIndex
        while index < address.endIndex {
            let c = address[index]
            if c == "\\" && inQuote {
                index = address.index(after: index)
                if index == address.endIndex { break }
            } else if c == "\"" {
                inQuote.toggle()
            } else if c == "@" && !inQuote {
                last = index
            }
            index = address.index(after: index)
        }
        return last
    }

    /// The value with RFC 5322 comments removed (quoted strings kept).
    static func removingComments(_ value: String) -> String {
        guard value.utf8.contains(UInt8(ascii: "(")) else { return value }
        var out = String.UnicodeScalarView()
        var depth = 0
        var inQuote = false
        var escaped = false
        for s in value.unicodeScalars {
            if escaped {
                escaped = false
                if depth == 0 { out.append(s) }
                continue
            }
            if s == "\\" && (inQuote || depth > 0) {
                escaped = true
                if depth == 0 { out.append(s) }
                continue
            }
            if depth > 0 {
                if s == "(" { depth += 1 } else if s == ")" { depth -= 1 }
                continue
            }
            if s == "\"" { inQuote.toggle() }
            if s == "(" && !inQuote {
                depth = 1
                continue
            }
            out.append(s)
        }
        return String(out)
    }
}
