/// The charsets Tern decodes for display (header encoded-words, link URLs), and what it knows
/// about the others. Names are matched per the IANA registry, ignoring case (RFC 2978).
enum MIMECharset: Sendable, Hashable {
    case utf8
    case usASCII
    case iso8859_1
    case iso8859_15
    case windows1252
    /// A charset Tern cannot decode; named for callers that only ask about ASCII compatibility.
    case other(String)

    init(name: String) {
        switch name.trimmingMailWhitespace().asciiLowercased() {
        case "utf-8", "utf8": self = .utf8
        case "us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us": self = .usASCII
        case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "cp819", "ibm819": self = .iso8859_1
        case "iso-8859-15", "iso8859-15", "iso_8859-15", "latin-9", "latin9": self = .iso8859_15
        case "windows-1252", "cp1252", "x-cp1252": self = .windows1252
        case let other: self = .other(other)
        }
    }

    /// Whether every ASCII byte in text of this charset stands for that ASCII character, so that
    /// markup and ASCII placeholders can be found and written byte-wise, leaving bytes ≥ 0x80 alone.
    /// False for UTF-16/32 and for the 7-bit charsets that shift (UTF-7, ISO-2022, HZ).
    var isASCIITransparent: Bool {
        guard case .other(let name) = self else { return true }
        let opaquePrefixes = ["utf-16", "utf16", "utf-32", "utf32", "ucs-2", "ucs2", "ucs-4", "ucs4",
                              "utf-7", "utf7", "iso-2022", "csiso2022", "hz-gb", "hz"]
        return !opaquePrefixes.contains(where: { name.hasPrefix($0) })
    }

    /// The text of `bytes` in this charset, or nil when Tern cannot decode it.
    /// Invalid sequences decode to U+FFFD.
    func decode<C: Collection>(_ bytes: C) -> String? where C.Element == UInt8 {
        switch self {
        case .utf8:
            return String(decoding: bytes, as: UTF8.self)
        case .usASCII:
            var s = String.UnicodeScalarView()
            for b in bytes { s.append(b < 0x80 ? Unicode.Scalar(b) : "\u{FFFD}") }
            return String(s)
        case .iso8859_1:
            var s = String.UnicodeScalarView()
            for b in bytes { s.append(Unicode.Scalar(b)) }
            return String(s)
        case .iso8859_15:
            var s = String.UnicodeScalarView()
            for b in bytes { s.append(Self.latin9(b)) }
            return String(s)
        case .windows1252:
            var s = String.UnicodeScalarView()
            for b in bytes { s.append(Self.cp1252(b)) }
            return String(s)
        case .other:
            return nil
        }
    }

    /// Decodes header bytes that carry no charset label: UTF-8 if valid (RFC 6532), else Windows-1252,
    /// the common superset of what unlabelled 8-bit headers turn out to be.
    static func decodeUnlabelled<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        if bytes.allSatisfy({ $0 < 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
        if let valid = String(validating: bytes, as: UTF8.self) { return valid }
        return MIMECharset.windows1252.decode(bytes) ?? ""
    }

    private static func latin9(_ b: UInt8) -> Unicode.Scalar {
        switch b {
        case 0xA4: "\u{20AC}"
        case 0xA6: "\u{0160}"
        case 0xA8: "\u{0161}"
        case 0xB4: "\u{017D}"
        case 0xB8: "\u{017E}"
        case 0xBC: "\u{0152}"
        case 0xBD: "\u{0153}"
        case 0xBE: "\u{0178}"
        default: Unicode.Scalar(b)
        }
    }

    /// Windows-1252 0x80–0x9F (the WHATWG Encoding Standard's index); undefined bytes map to the C1 control.
    private static let cp1252High: [UInt32] = [
        0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
        0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
        0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
        0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
    ]

    private static func cp1252(_ b: UInt8) -> Unicode.Scalar {
        guard b >= 0x80, b <= 0x9F else { return Unicode.Scalar(b) }
        return Unicode.Scalar(cp1252High[Int(b - 0x80)]) ?? "\u{FFFD}"
    }
}
