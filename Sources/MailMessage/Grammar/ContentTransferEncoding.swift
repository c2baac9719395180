/// A `Content-Transfer-Encoding` value.
///
/// - SeeAlso: RFC 2045 §6.1
public enum ContentTransferEncoding: Sendable, Hashable, CustomStringConvertible {
    case sevenBit
    case eightBit
    case binary
    case quotedPrintable
    case base64
    /// An encoding Tern does not know (`x-uuencode`, say): the body is left alone.
    case other(String)

    /// Reads a field value; case and surrounding whitespace or comments are ignored.
    public init(parsing value: String) {
        var reader = StructuredFieldReader(Array(value.utf8))
        reader.skipCFWS()
        let token = (reader.readToken() ?? "").asciiLowercased()
        switch token {
        case "7bit": self = .sevenBit
        case "8bit": self = .eightBit
        case "binary": self = .binary
        case "quoted-printable": self = .quotedPrintable
        case "base64": self = .base64
        default: self = .other(token)
        }
    }

    /// The field value as Tern writes it.
    public var description: String {
        switch self {
        case .sevenBit: "7bit"
        case .eightBit: "8bit"
        case .binary: "binary"
        case .quotedPrintable: "quoted-printable"
        case .base64: "base64"
        case .other(let token): token
        }
    }
}
