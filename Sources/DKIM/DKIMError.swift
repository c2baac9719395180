/// Why a key could not be made or loaded, or a message could not be signed.
///
/// The hint says where and what; it never holds key material.
public struct DKIMError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let rawValue: String
        /// The header has no `From` field, which every signature must cover (RFC 6376 §5.4).
        public static let missingFrom = Code(rawValue: "missingFrom")
        /// A header line that is not a field (no colon, or a continuation with no field above it).
        public static let malformedHeader = Code(rawValue: "malformedHeader")
        /// An RSA key shorter than 2048 bits (RFC 8301 §3.2: 1024 is the floor, 2048 the advice).
        public static let keyTooWeak = Code(rawValue: "keyTooWeak")
        /// An RSA key longer than 4096 bits, which verifiers need not accept (RFC 8301 §3.2).
        public static let keyTooLarge = Code(rawValue: "keyTooLarge")
        /// A key of a type DKIM cannot use here (an EC P-256 key, an encrypted PEM, …).
        public static let unsupportedKey = Code(rawValue: "unsupportedKey")
        /// PEM or DER that does not decode to a private key.
        public static let invalidKey = Code(rawValue: "invalidKey")
        /// A `d=` domain that is not a DNS name (RFC 6376 §3.5).
        public static let invalidDomain = Code(rawValue: "invalidDomain")
        /// An `s=` selector that is not a DNS name (RFC 6376 §3.1).
        public static let invalidSelector = Code(rawValue: "invalidSelector")
        /// A header name that cannot go in `h=`, or a list without `From` (RFC 6376 §3.5, §5.4).
        public static let invalidHeaderList = Code(rawValue: "invalidHeaderList")
        /// A body hash that is not 32 bytes of SHA-256.
        public static let invalidBodyHash = Code(rawValue: "invalidBodyHash")
        /// The crypto library refused to sign.
        public static let signingFailed = Code(rawValue: "signingFailed")
        public var description: String { rawValue }
    }

    public var code: Code
    /// Short human text about where and what.
    public var hint: String

    public init(_ code: Code, _ hint: String) {
        self.code = code
        self.hint = hint
    }

    public var description: String { "DKIM \(code): \(hint)" }
}
