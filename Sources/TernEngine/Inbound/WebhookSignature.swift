import Crypto
public import Foundation

/// Signs webhook bodies so that a receiver can tell a post came from this Tern and is fresh.
///
///     X-Tern-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
///
/// The timestamp is signed with the body, so a receiver that rejects an old `t` (five
/// minutes is the usual tolerance) rejects replays too; every attempt is signed afresh.
/// More than one `v1` may appear (while a secret is being changed); one match suffices.
///
/// - SeeAlso: RFC 2104 (HMAC), RFC 6234 (SHA-256)
public struct WebhookSignature: Sendable {
    public static let signatureHeader = "X-Tern-Signature"
    /// What the post is about: `inbound` for inbound mail.
    public static let eventHeader = "X-Tern-Event"
    /// The id of what is posted, the same on every attempt: receivers deduplicate by it.
    public static let deliveryHeader = "X-Tern-Delivery"
    /// How far `t` may lie from the receiver's clock in ``verify(_:body:now:tolerance:)``.
    public static let defaultTolerance: Duration = .seconds(300)

    private let key: SymmetricKey

    public init(secret: [UInt8]) {
        key = SymmetricKey(data: secret)
    }

    /// The `X-Tern-Signature` value for `body` sent at `date`.
    public func header(for body: [UInt8], at date: Date) -> String {
        let timestamp = Self.unixSeconds(date)
        let code = HMAC<SHA256>.authenticationCode(for: Self.signedBytes(timestamp: timestamp, body: body), using: key)
        return "t=\(timestamp),v1=\(Self.hex(Array(code)))"
    }

    /// Checks a received `X-Tern-Signature` against the body and the receiver's clock,
    /// comparing codes in constant time.
    public func verify(_ header: String, body: [UInt8], now: Date, tolerance: Duration = Self.defaultTolerance) throws(VerificationError) {
        var timestamp: Int64?
        var codes: [[UInt8]] = []
        for element in header.split(separator: ",") {
            let pair = element.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            let name = pair[0].trimmingCharacters(in: .whitespaces)
            let value = pair[1].trimmingCharacters(in: .whitespaces)
            switch name {
            case "t": timestamp = Int64(value)
            case "v1": if let code = Self.bytes(hex: value) { codes.append(code) }
            default: continue // other schemes, for later versions
            }
        }
        guard let timestamp else { throw VerificationError(.malformed, "no t=<unix seconds>") }
        guard !codes.isEmpty else { throw VerificationError(.malformed, "no v1=<hex HMAC-SHA256>") }
        let age = abs(Double(Self.unixSeconds(now) - timestamp))
        guard age <= Double(tolerance.components.seconds) else {
            throw VerificationError(.outsideTolerance, "t is \(Int64(age)) s away from now")
        }
        let signed = Self.signedBytes(timestamp: timestamp, body: body)
        guard codes.contains(where: { HMAC<SHA256>.isValidAuthenticationCode($0, authenticating: signed, using: key) }) else {
            throw VerificationError(.mismatch, "no v1 matches the body")
        }
    }

    /// Why a signature was not accepted.
    public struct VerificationError: Error, Sendable, Equatable, CustomStringConvertible {
        public struct Code: Hashable, Sendable {
            let name: String
            /// The header is not `t=…,v1=…`.
            public static let malformed = Code(name: "malformed")
            /// `t` is too far from the receiver's clock: a replay, or a clock that is off.
            public static let outsideTolerance = Code(name: "outside tolerance")
            /// No code matches: another secret, or a changed body.
            public static let mismatch = Code(name: "mismatch")
        }

        public var code: Code
        public var hint: String

        init(_ code: Code, _ hint: String) {
            self.code = code
            self.hint = hint
        }

        public var description: String { "webhook signature \(code.name): \(hint)" }
    }

    // MARK: - Helpers

    private static func unixSeconds(_ date: Date) -> Int64 {
        Int64(date.timeIntervalSince1970.rounded(.down))
    }

    private static func signedBytes(timestamp: Int64, body: [UInt8]) -> [UInt8] {
        Array("\(timestamp).".utf8) + body
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private static func hex(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(hexDigits[Int(b >> 4)])
            out.append(hexDigits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count.isMultiple(of: 2) else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let hi = nibble(digits[i]), let lo = nibble(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
