import Crypto

/// What a tracking token stands for; the low nibble of its first byte.
public enum TrackingTokenKind: UInt8, Sendable, CaseIterable {
    case open = 1
    case click = 2
    case unsubscribe = 3
    case bounce = 4
}

/// One recipient of one message, as named by an open pixel, a click redirect, an
/// unsubscribe link or a VERP bounce address.
public struct TrackingToken: Hashable, Sendable {
    public var kind: TrackingTokenKind
    public var messageID: MessageID
    public var recipientID: RecipientID
    /// The link's position in the message, for clicks (0 and up). Other kinds carry no
    /// link index: it is not encoded, and their tokens always verify with 0.
    public var linkIndex: Int

    public init(kind: TrackingTokenKind, messageID: MessageID, recipientID: RecipientID, linkIndex: Int = 0) {
        self.kind = kind
        self.messageID = messageID
        self.recipientID = recipientID
        self.linkIndex = linkIndex
    }
}

/// The server's token secrets: the first (newest) signs, all of them verify, so a secret
/// can be rotated without breaking the links in mail already sent.
///
/// A token verifies with no store read. Its bytes, before base64url (RFC 4648 §5) without
/// padding:
///
///     header       1 byte   version (1) in the high nibble, kind in the low nibble
///     key id       1 byte   names the secret that signed, so verification tries only it
///     message id   varint   unsigned LEB128 of the id's 64-bit pattern
///     recipient    varint   zigzag(recipient id − message id), wrapping: any pair works
///     link index   varint   clicks only
///     MAC          12 bytes HMAC-SHA256(kind key, "tern-token-v1" ‖ kind ‖ all bytes above),
///                           truncated to 96 bits (RFC 2104 §5)
///
/// Each secret gives one HMAC key per kind (HKDF-SHA256, RFC 5869, info
/// `tern-token-v1/<kind>`), so a token of one kind never verifies as another, and the key
/// id is one byte of a further HKDF output (`tern-token-v1/key-id`), not of the secret.
/// Intake's ids are time-ordered and a message's recipients are numbered just after it,
/// so the message id takes 9 bytes (until 2094) and the recipient delta 1 to 4: an open
/// token is 32 to 36 characters, a click's 34 to 38.
///
/// Verification is strict: one spelling per token (no padding, no stray bits in the last
/// character, shortest varints only, no trailing bytes), at most
/// `maximumTokenLength` characters, and the MAC is compared in constant time. Nothing is
/// returned from a token whose MAC does not match.
///
/// Base64url is case-sensitive, so tokens that go into an address's local part (VERP
/// return paths, the unsubscribe `mailto:`) use `addressToken`, the same bytes in base32.
public struct TrackingKeys: Sendable {
    /// At most this many secrets verify at once.
    public static let maximumSecretCount = 8
    /// A secret has at least 128 bits.
    public static let minimumSecretByteCount = 16
    /// The longest token `verify` reads: the longest valid token is 59 characters.
    public static let maximumTokenLength = 64

    static let version: UInt8 = 1
    static let macByteCount = 12
    static let label = Array("tern-token-v1".utf8)

    /// A class, not a struct: every token verified walks the signers, and copying a struct of
    /// four keys and four primed HMACs out of the array costs a retain and a release of each.
    final class Signer: Sendable {
        let keyID: UInt8
        /// One HMAC key per kind.
        let openKey, clickKey, unsubscribeKey, bounceKey: SymmetricKey
        /// Per kind, an HMAC that has taken its key and the label and kind byte already:
        /// each token then costs only its own bytes (the hot path of the tracking endpoints).
        let primedOpen, primedClick, primedUnsubscribe, primedBounce: PrimedHMACSHA256

        init(secret: [UInt8]) {
            let material = SymmetricKey(data: secret)
            func derive(_ label: String, _ count: Int) -> SymmetricKey {
                HKDF<SHA256>.deriveKey(
                    inputKeyMaterial: material, info: Array("tern-token-v1/\(label)".utf8), outputByteCount: count)
            }
            keyID = derive("key-id", 1).withUnsafeBytes { $0[0] }
            openKey = derive("open", 32)
            clickKey = derive("click", 32)
            unsubscribeKey = derive("unsubscribe", 32)
            bounceKey = derive("bounce", 32)
            func prime(_ kind: TrackingTokenKind, _ key: SymmetricKey) -> PrimedHMACSHA256 {
                var hmac = PrimedHMACSHA256(key: key)
                hmac.update(data: TrackingKeys.label)
                hmac.update(data: [kind.rawValue])
                return hmac
            }
            primedOpen = prime(.open, openKey)
            primedClick = prime(.click, clickKey)
            primedUnsubscribe = prime(.unsubscribe, unsubscribeKey)
            primedBounce = prime(.bounce, bounceKey)
        }

        func key(for kind: TrackingTokenKind) -> SymmetricKey {
            switch kind {
            case .open: openKey
            case .click: clickKey
            case .unsubscribe: unsubscribeKey
            case .bounce: bounceKey
            }
        }

        func mac(kind: TrackingTokenKind, over bytes: ArraySlice<UInt8>) -> [UInt8] {
            Array(code(kind: kind, over: bytes).prefix(TrackingKeys.macByteCount))
        }

        /// Whether `mac` is the (truncated) MAC of `bytes`, compared in constant time.
        func verifies(kind: TrackingTokenKind, over bytes: ArraySlice<UInt8>, mac: ArraySlice<UInt8>) -> Bool {
            guard mac.count == TrackingKeys.macByteCount else { return false }
            return code(kind: kind, over: bytes).withUnsafeBytes { code in
                var difference: UInt8 = 0
                for (index, byte) in zip(mac.indices, code) { difference |= mac[index] ^ byte }
                return difference == 0
            }
        }

        private func code(kind: TrackingTokenKind, over bytes: ArraySlice<UInt8>) -> SHA256.Digest {
            let hmac: PrimedHMACSHA256
            switch kind {
            case .open: hmac = primedOpen
            case .click: hmac = primedClick
            case .unsubscribe: hmac = primedUnsubscribe
            case .bounce: hmac = primedBounce
            }
            return bytes.withUnsafeBytes { hmac.authenticationCode(over: $0) }
        }
    }

    let signers: [Signer]

    /// - Parameter secrets: newest first; 1 to `maximumSecretCount` of them, each at
    ///   least `minimumSecretByteCount` bytes.
    public init(secrets: [[UInt8]]) throws {
        guard !secrets.isEmpty else {
            throw TrackingKeysError(.noSecret, "at least one token secret is needed")
        }
        guard secrets.count <= Self.maximumSecretCount else {
            throw TrackingKeysError(
                .tooManySecrets, "\(secrets.count) token secrets; at most \(Self.maximumSecretCount) verify at once")
        }
        for (index, secret) in secrets.enumerated() where secret.count < Self.minimumSecretByteCount {
            throw TrackingKeysError(
                .secretTooShort,
                "token secret \(index + 1) has \(secret.count) bytes; at least \(Self.minimumSecretByteCount) are needed")
        }
        signers = secrets.map(Signer.init(secret:))
    }

    /// The URL-safe text of a token, signed with the newest secret.
    /// - Precondition: a click's `linkIndex` is not negative.
    public func token(_ token: TrackingToken) -> String {
        Base64URL.encode(signedBytes(token))
    }

    /// The token in lower-case base32 (RFC 4648 §6, without padding), for the local part of
    /// an address (a VERP return path, the unsubscribe `mailto:`): mail systems may change
    /// the case of a local part, so its spelling must not depend on case. 39 to 44 characters.
    public func addressToken(_ token: TrackingToken) -> String {
        Base32.encode(signedBytes(token))
    }

    /// The token `text` stands for, or nil unless it is exactly a token signed by one of
    /// the secrets.
    public func verify(_ text: some StringProtocol) -> TrackingToken? {
        guard let bytes = Base64URL.decode(text.utf8, maximumLength: Self.maximumTokenLength) else { return nil }
        return verify(bytes: bytes)
    }

    /// The token an address token stands for, in either case; nil unless it is exactly a
    /// token signed by one of the secrets.
    public func verifyAddressToken(_ text: some StringProtocol) -> TrackingToken? {
        guard let bytes = Base32.decode(text.utf8, maximumLength: Self.maximumAddressTokenLength) else { return nil }
        return verify(bytes: bytes)
    }

    /// At most this many characters in an address token. Time-ordered ids give 39 to 44
    /// (a local part holds 64); ids far apart, as tests make them, up to 71.
    public static let maximumAddressTokenLength = 72

    private func signedBytes(_ token: TrackingToken) -> [UInt8] {
        let signer = signers[0]
        var bytes = [UInt8]()
        bytes.reserveCapacity(44)
        bytes.append(Self.version << 4 | token.kind.rawValue)
        bytes.append(signer.keyID)
        Varint.append(UInt64(bitPattern: token.messageID.rawValue), to: &bytes)
        Varint.append(Varint.zigzag(token.recipientID.rawValue &- token.messageID.rawValue), to: &bytes)
        if token.kind == .click {
            precondition(token.linkIndex >= 0, "negative link index \(token.linkIndex)")
            Varint.append(UInt64(token.linkIndex), to: &bytes)
        }
        bytes += signer.mac(kind: token.kind, over: bytes[...])
        return bytes
    }

    private func verify(bytes: [UInt8]) -> TrackingToken? {
        guard bytes.count >= 2 + 2 + Self.macByteCount,
            bytes[0] >> 4 == Self.version,
            let kind = TrackingTokenKind(rawValue: bytes[0] & 0x0f)
        else { return nil }
        let macStart = bytes.count - Self.macByteCount
        var reader = Varint.Reader(bytes: bytes[2..<macStart])
        guard let message = reader.read(), let delta = reader.read() else { return nil }
        var linkIndex = 0
        if kind == .click {
            guard let link = reader.read(), link <= UInt64(Int.max) else { return nil }
            linkIndex = Int(link)
        }
        guard reader.isAtEnd else { return nil }

        let signed = bytes[..<macStart]
        let mac = bytes[macStart...]
        guard signers.contains(where: { $0.keyID == bytes[1] && $0.verifies(kind: kind, over: signed, mac: mac) }) else {
            return nil
        }
        let messageID = Int64(bitPattern: message)
        return TrackingToken(
            kind: kind, messageID: MessageID(rawValue: messageID),
            recipientID: RecipientID(rawValue: messageID &+ Varint.unzigzag(delta)), linkIndex: linkIndex)
    }
}

/// Why a set of token secrets was refused.
public struct TrackingKeysError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Code
    public var message: String

    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public static let noSecret = Code(name: "noSecret")
        public static let tooManySecrets = Code(name: "tooManySecrets")
        public static let secretTooShort = Code(name: "secretTooShort")
        public var description: String { name }
    }

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

/// Unsigned LEB128, as in protobuf and WebAssembly, read strictly.
enum Varint {
    static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    static func zigzag(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: (value << 1) ^ (value >> 63))
    }

    static func unzigzag(_ value: UInt64) -> Int64 {
        Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1)
    }

    struct Reader {
        var bytes: ArraySlice<UInt8>

        var isAtEnd: Bool { bytes.isEmpty }

        /// The next value, or nil if it is cut short, longer than 64 bits, or not in its
        /// shortest form (a last byte of zero after the first).
        mutating func read() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while let byte = bytes.popFirst() {
                let payload = UInt64(byte & 0x7f)
                if shift == 63, payload > 1 { return nil }
                value |= payload << shift
                if byte & 0x80 == 0 {
                    if byte == 0, shift > 0 { return nil }
                    return value
                }
                shift += 7
                if shift > 63 { return nil }
            }
            return nil
        }
    }
}

/// Base64 with the URL and filename safe alphabet, without padding (RFC 4648 §5, §3.2).
enum Base64URL {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index + 3 <= bytes.count {
            let group = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in [18, 12, 6, 0] as [UInt32] { out.append(alphabet[Int(group >> shift & 0x3f)]) }
            index += 3
        }
        switch bytes.count - index {
        case 1:
            let group = UInt32(bytes[index]) << 16
            for shift in [18, 12] as [UInt32] { out.append(alphabet[Int(group >> shift & 0x3f)]) }
        case 2:
            let group = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            for shift in [18, 12, 6] as [UInt32] { out.append(alphabet[Int(group >> shift & 0x3f)]) }
        default:
            break
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func value(of character: UInt8) -> UInt32? {
        switch character {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): UInt32(character - UInt8(ascii: "A"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): UInt32(character - UInt8(ascii: "a")) + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(character - UInt8(ascii: "0")) + 52
        case UInt8(ascii: "-"): 62
        case UInt8(ascii: "_"): 63
        default: nil
        }
    }

    /// The bytes of `text`, or nil if it is longer than `maximumLength`, has a character
    /// outside the alphabet (padding included), a length no byte string encodes to, or
    /// non-zero bits after the last byte: each byte string has exactly one spelling.
    static func decode(_ text: some Sequence<UInt8>, maximumLength: Int) -> [UInt8]? {
        // Over the text's contiguous octets when it has them (a native String's UTF-8 view
        // does): verification is generic over StringProtocol, where walking the view costs a
        // witness call per character, most of a token's decoding on the tracking endpoints.
        text.withContiguousStorageIfAvailable { decodeCharacters($0, maximumLength: maximumLength) }
            ?? decodeCharacters(text, maximumLength: maximumLength)
    }

    private static func decodeCharacters(_ text: some Sequence<UInt8>, maximumLength: Int) -> [UInt8]? {
        var out = [UInt8]()
        out.reserveCapacity(maximumLength * 3 / 4)
        var group: UInt32 = 0
        var count = 0
        for character in text {
            guard count < maximumLength, let value = value(of: character) else { return nil }
            group = group << 6 | value
            count += 1
            if count % 4 == 0 {
                out.append(UInt8(truncatingIfNeeded: group >> 16))
                out.append(UInt8(truncatingIfNeeded: group >> 8))
                out.append(UInt8(truncatingIfNeeded: group))
                group = 0
            }
        }
        switch count % 4 {
        case 0:
            break
        case 2:
            guard group & 0x0f == 0 else { return nil }
            out.append(UInt8(truncatingIfNeeded: group >> 4))
        case 3:
            guard group & 0x03 == 0 else { return nil }
            out.append(UInt8(truncatingIfNeeded: group >> 10))
            out.append(UInt8(truncatingIfNeeded: group >> 2))
        default:
            return nil
        }
        return out
    }
}

/// Base32 with the RFC 4648 §6 alphabet in lower case, without padding. Decoding takes
/// either case; as with `Base64URL`, each byte string has exactly one spelling otherwise.
enum Base32 {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count * 8 + 4) / 5)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = buffer << 8 | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[Int(buffer >> UInt32(bits) & 0x1f)])
            }
            buffer &= (1 << UInt32(bits)) - 1
        }
        if bits > 0 { out.append(alphabet[Int(buffer << UInt32(5 - bits) & 0x1f)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func value(of character: UInt8) -> UInt32? {
        switch character {
        case UInt8(ascii: "a")...UInt8(ascii: "z"): UInt32(character - UInt8(ascii: "a"))
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): UInt32(character - UInt8(ascii: "A"))
        case UInt8(ascii: "2")...UInt8(ascii: "7"): UInt32(character - UInt8(ascii: "2")) + 26
        default: nil
        }
    }

    /// The bytes of `text`, or nil if it is longer than `maximumLength`, has a character
    /// outside the alphabet, a length no byte string encodes to, or non-zero bits after
    /// the last byte.
    static func decode(_ text: some Sequence<UInt8>, maximumLength: Int) -> [UInt8]? {
        // As `Base64URL.decode`: over contiguous octets when the text has them.
        text.withContiguousStorageIfAvailable { decodeCharacters($0, maximumLength: maximumLength) }
            ?? decodeCharacters(text, maximumLength: maximumLength)
    }

    private static func decodeCharacters(_ text: some Sequence<UInt8>, maximumLength: Int) -> [UInt8]? {
        var out = [UInt8]()
        out.reserveCapacity(maximumLength * 5 / 8)
        var buffer: UInt32 = 0
        var bits = 0
        var count = 0
        for character in text {
            guard count < maximumLength, let value = value(of: character) else { return nil }
            count += 1
            buffer = buffer << 5 | value
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
                buffer &= (1 << UInt32(bits)) - 1
            }
        }
        // Valid lengths leave 0, 2, 4, 1 or 3 bits over (for 0 to 4 bytes past a 5-byte
        // group), all of them zero; 5 or more bits over would be a character too many.
        guard bits < 5, buffer == 0 else { return nil }
        return out
    }
}
