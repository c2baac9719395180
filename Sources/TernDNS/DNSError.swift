/// Why a lookup produced no answer. Delivery bounces on permanent codes and defers on the rest.
public struct DNSError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        let permanent: Bool
        public var description: String { name }

        /// NXDOMAIN: the name does not exist (RFC 1035 §4.1.1, RFC 2308 §2.1). Permanent.
        public static let nameDoesNotExist = Code(name: "nameDoesNotExist", permanent: true)
        /// The name is not a valid domain name. Permanent.
        public static let invalidName = Code(name: "invalidName", permanent: true)
        /// No server answered within the timeout, after every retry.
        public static let timeout = Code(name: "timeout", permanent: false)
        /// SERVFAIL.
        public static let serverFailure = Code(name: "serverFailure", permanent: false)
        /// REFUSED.
        public static let refused = Code(name: "refused", permanent: false)
        /// Any other RCODE (FORMERR, NOTIMP, …).
        public static let unexpectedResponse = Code(name: "unexpectedResponse", permanent: false)
        /// A response that could not be decoded, or a CNAME chain that is too long or loops.
        public static let malformedResponse = Code(name: "malformedResponse", permanent: false)
        /// Socket-level failure: connect, send, receive.
        public static let networkError = Code(name: "networkError", permanent: false)
        /// No name server is configured.
        public static let noNameServers = Code(name: "noNameServers", permanent: false)
    }

    public var code: Code
    /// The queried name, as text.
    public var name: String
    public var type: DNSRecordType
    public var detail: String

    public init(_ code: Code, name: String, type: DNSRecordType, detail: String = "") {
        self.code = code
        self.name = name
        self.type = type
        self.detail = detail
    }

    /// True for answers that will not change on retry (NXDOMAIN, invalid name); false means "try again later".
    public var isPermanent: Bool { code.permanent }

    public var description: String {
        "DNS \(code) for \(name) \(type)" + (detail.isEmpty ? "" : ": \(detail)")
    }
}
