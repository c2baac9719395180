/// A malformed DNS message or name: thrown by the decoders, never a crash.
///
/// The code says what was wrong; `offset` is the byte position in the message where it was found.
public struct DNSWireError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        /// The message ends before a field it announced.
        public static let truncated = Code(name: "truncated")
        /// A label length byte uses the reserved 0b01/0b10 prefixes (RFC 1035 §4.1.4, RFC 6891 §5).
        public static let badLabelType = Code(name: "badLabelType")
        /// A compression pointer that does not point strictly backwards, or too many of them (RFC 1035 §4.1.4).
        public static let badPointer = Code(name: "badPointer")
        /// A name longer than 255 octets or a label longer than 63 (RFC 1035 §2.3.4).
        public static let nameTooLong = Code(name: "nameTooLong")
        /// RDATA whose content does not fill its RDLENGTH exactly, or is the wrong size for its type.
        public static let badRData = Code(name: "badRData")
        /// A textual name or address that cannot be represented.
        public static let badText = Code(name: "badText")
    }

    public var code: Code
    public var hint: String
    public var offset: Int?

    public init(_ code: Code, _ hint: String, offset: Int? = nil) {
        self.code = code
        self.hint = hint
        self.offset = offset
    }

    public var description: String {
        if let offset { return "DNS \(code) at byte \(offset): \(hint)" }
        return "DNS \(code): \(hint)"
    }
}
