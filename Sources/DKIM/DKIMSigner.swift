import Crypto
import _CryptoExtras

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// Signs messages for one domain, selector and key: makes the `DKIM-Signature` field to put on
/// top of the header.
///
/// The field is `v=1; a=…; c=relaxed/relaxed; d=; s=; t=; h=; bh=; b=` (no `l=`, RFC 6376 §8.2).
/// `h=` lists each header in ``headersToSign`` as many times as the message has it (instances are
/// taken from the bottom up, RFC 6376 §5.4.2), then each name in ``oversign`` once more: a field
/// of that name added later, above or below, then changes the signed data and the signature
/// fails (RFC 6376 §8.15). A name listed but absent counts as empty, so an absent
/// `List-Unsubscribe` cannot be added either.
///
/// **Dual signing** (RFC 8463 §1, §6): make one signer per key and call both on the same unsigned
/// header; prepend both fields. Neither signature covers `DKIM-Signature` fields and
/// fields added on top never change which instances the bottom-up rule picks, so either order
/// verifies. Prefer the Ed25519 field below and the RSA field on top (add Ed25519 first): a
/// verifier that only looks at the topmost signature, or that does not know ed25519-sha256 and
/// stops at the first signature it cannot use, still finds one it can check.
///
/// The signer is pure: it reads no clock (pass the time for `t=`) and does no IO.
public struct DKIMSigner: Sendable {
    /// Headers signed when present (RFC 6376 §5.4.1 recommends these and more).
    public static let defaultHeadersToSign: [String] = [
        "From", "Subject", "Date", "To", "Cc", "Message-ID", "Reply-To", "In-Reply-To", "References",
        "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "List-Unsubscribe",
        "List-Unsubscribe-Post", "Sender", "Feedback-ID",
    ]
    /// Headers listed once more than present, so none can be added (RFC 6376 §8.15); an absent
    /// `List-Unsubscribe` cannot be added to a signed message either (RFC 8058 §4 asks for it signed).
    public static let defaultOversign: [String] = [
        "From", "Subject", "Date", "To", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post",
    ]
    /// Longest line a signature field is folded to when it can be (RFC 5322 §2.1.1).
    public static let foldWidth = 78

    /// The signing domain, `d=`.
    public let domain: String
    /// The selector, `s=`: the key record is at `selector._domainkey.domain`.
    public let selector: String
    public let key: DKIMPrivateKey
    /// Header names to sign, lowercased, each once, in the order they go in `h=`.
    public let headersToSign: [String]
    /// Names (a subset of ``headersToSign``) listed once more than present.
    public let oversign: [String]
    /// `c=`: how header and body are canonicalised. Relaxed/relaxed unless told otherwise.
    public let canonicalization: (header: DKIMCanonicalization, body: DKIMCanonicalization)

    /// - Throws: ``DKIMError`` with `.invalidDomain`, `.invalidSelector`, `.keyTooWeak`,
    ///   `.keyTooLarge` (RSA outside 2048–4096 bits, RFC 8301 §3.2) or `.invalidHeaderList`
    ///   (a name that is not a field name, no `From`, or an oversigned name not signed).
    public init(
        domain: String,
        selector: String,
        key: DKIMPrivateKey,
        headersToSign: [String] = DKIMSigner.defaultHeadersToSign,
        oversign: [String] = DKIMSigner.defaultOversign,
        canonicalization: (header: DKIMCanonicalization, body: DKIMCanonicalization) = (.relaxed, .relaxed)
    ) throws(DKIMError) {
        guard Self.isDomainName(domain) else {
            throw DKIMError(.invalidDomain, "d=\(domain.debugDescription) is not a DNS name (letters, digits, hyphens, dots)")
        }
        guard Self.isDomainName(selector) else {
            throw DKIMError(.invalidSelector, "s=\(selector.debugDescription) is not a DNS name (letters, digits, hyphens, dots)")
        }
        if case .rsa(let rsa) = key {
            try DKIMPrivateKey.checkRSASize(rsa.keySizeInBits)
        }
        var signed: [String] = []
        for name in headersToSign {
            let lower = try Self.checkedHeaderName(name)
            if !signed.contains(lower) { signed.append(lower) }
        }
        guard signed.contains("from") else {
            throw DKIMError(.invalidHeaderList, "headersToSign must include From (RFC 6376 §5.4)")
        }
        var over: [String] = []
        for name in oversign {
            let lower = try Self.checkedHeaderName(name)
            guard signed.contains(lower) else {
                throw DKIMError(.invalidHeaderList, "\(name) is oversigned but not in headersToSign")
            }
            if !over.contains(lower) { over.append(lower) }
        }
        self.domain = domain
        self.selector = selector
        self.key = key
        self.headersToSign = signed
        self.oversign = over
        self.canonicalization = canonicalization
    }

    /// A body hasher with this signer's body canonicalisation.
    public func makeBodyHasher() -> DKIMBodyHasher {
        DKIMBodyHasher(canonicalization: canonicalization.body)
    }

    /// The `h=` list for a header: signed names as often as present, then the oversigned once more.
    func signedHeaderNames(for header: HeaderSection) -> [String] {
        var names: [String] = []
        for name in headersToSign {
            let count = header.count(of: Array(name.utf8))
            names.append(contentsOf: repeatElement(name, count: count))
        }
        names.append(contentsOf: oversign)
        return names
    }

    /// The complete `DKIM-Signature` field, folded, ending in CRLF, to put above the header.
    ///
    /// - Parameters:
    ///   - header: the header section as sent: CRLF-terminated fields, up to (not including) the
    ///     empty line that separates it from the body.
    ///   - bodyHash: the 32 bytes from ``DKIMBodyHasher/finalize()`` (use ``makeBodyHasher()``).
    ///   - timestamp: the signing time for `t=` (RFC 6376 §3.5), or nil for none.
    /// - Throws: ``DKIMError`` `.missingFrom`, `.malformedHeader`, `.invalidBodyHash`, `.signingFailed`.
    /// - SeeAlso: RFC 6376 §3.5 (tags), §3.7 (what is hashed), §5 (signing)
    public func signatureField(header: [UInt8], bodyHash: [UInt8], timestamp: Date?) throws(DKIMError) -> String {
        guard bodyHash.count == SHA256.byteCount else {
            throw DKIMError(.invalidBodyHash, "the body hash has \(bodyHash.count) bytes, SHA-256 has \(SHA256.byteCount)")
        }
        let section = try HeaderSection(header)
        guard section.count(of: Array("from".utf8)) > 0 else {
            throw DKIMError(.missingFrom, "the header has no From field; RFC 6376 §5.4 requires signing it")
        }
        let names = signedHeaderNames(for: section)

        var field = SignatureFieldWriter(width: Self.foldWidth)
        field.append(token: "v=1;")
        field.append(token: "a=\(key.algorithm.rawValue);")
        field.append(token: "c=\(canonicalization.header.rawValue)/\(canonicalization.body.rawValue);")
        field.append(token: "d=\(domain);")
        field.append(token: "s=\(selector);")
        if let timestamp {
            let seconds = max(0, Int64(timestamp.timeIntervalSince1970.rounded(.down)))
            field.append(token: "t=\(seconds);")
        }
        field.append(headerList: names)
        field.append(token: "bh=\(Data(bodyHash).base64EncodedString());")
        field.beginSignature()

        let signature = try Self.signature(
            header: section, signedNames: names.map { Array($0.utf8) },
            signatureFieldWithoutValue: Array(field.text.utf8),
            canonicalization: canonicalization.header, key: key)
        field.appendSignature(Data(signature).base64EncodedString())
        return field.text + "\r\n"
    }

    /// Signs a whole message: splits the header from the body at the first empty line and streams
    /// the body through the hasher in place (the body is not copied).
    ///
    /// - Returns: the `DKIM-Signature` field (ending in CRLF) to put in front of `message`.
    public func sign(message: [UInt8], timestamp: Date? = nil) throws(DKIMError) -> String {
        let split = Self.headerEnd(message)
        var hasher = makeBodyHasher()
        message.withUnsafeBytes { bytes in
            hasher.update(UnsafeRawBufferPointer(rebasing: bytes[split.bodyStart...]))
        }
        return try signatureField(header: Array(message[..<split.headerEnd]), bodyHash: hasher.finalize(), timestamp: timestamp)
    }

    /// Where the header ends (just after the CRLF of its last field) and the body starts (after the
    /// empty line). With no empty line the whole message is header and the body is empty.
    static func headerEnd(_ message: [UInt8]) -> (headerEnd: Int, bodyStart: Int) {
        let n = message.count
        if n >= 2, message[0] == ASCII.cr, message[1] == ASCII.lf { return (0, 2) }
        var i = 0
        while i + 3 < n {
            if message[i] == ASCII.cr, message[i + 1] == ASCII.lf, message[i + 2] == ASCII.cr, message[i + 3] == ASCII.lf {
                return (i + 2, i + 4)
            }
            i += 1
        }
        return (n, n)
    }

    /// The signature over the canonical signed fields followed by the canonical signature field
    /// with an empty `b=` and no CRLF (RFC 6376 §3.7): RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017
    /// §8.2), or Ed25519 over the SHA-256 of that data (RFC 8463 §3).
    ///
    /// No key-size check here: the RFC 8463 example key is 1024 bits, and its test uses this.
    static func signature(
        header: HeaderSection, signedNames: [[UInt8]], signatureFieldWithoutValue: [UInt8],
        canonicalization: DKIMCanonicalization, key: DKIMPrivateKey
    ) throws(DKIMError) -> [UInt8] {
        var data = header.canonicalData(signing: signedNames, using: canonicalization)
        let fieldSection = try HeaderSection(signatureFieldWithoutValue)
        guard let dkimField = fieldSection.fields.first else {
            throw DKIMError(.malformedHeader, "the DKIM-Signature field does not parse")
        }
        signatureFieldWithoutValue.withUnsafeBufferPointer { buffer in
            HeaderCanonicalization.append(
                UnsafeBufferPointer(rebasing: buffer[dkimField.range]), colon: dkimField.colon,
                using: canonicalization, terminate: false, to: &data)
        }
        let digest = SHA256.hash(data: data)
        do {
            switch key {
            case .rsa(let rsa):
                return Array(try rsa.signature(for: digest, padding: .insecurePKCS1v1_5).rawRepresentation)
            case .ed25519(let ed25519):
                return Array(try ed25519.signature(for: Array(digest)))
            }
        } catch {
            throw DKIMError(.signingFailed, "\(key.algorithm.rawValue) signing failed: \(error)")
        }
    }

    /// `sub-domain *("." sub-domain)` with `sub-domain = Let-dig [Ldh-str]` (RFC 6376 §3.5, RFC 5321
    /// §4.1.2), labels of at most 63 characters, at most 253 in all.
    static func isDomainName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 253 else { return false }
        for label in bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.count <= 63,
                label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-"),
                label.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ASCII.lowercased($0) &- 0x61 < 26 || $0 == UInt8(ascii: "-") })
            else { return false }
        }
        return true
    }

    /// A field name (`1*ftext`, RFC 5322 §3.6.8), lowercased.
    static func checkedHeaderName(_ name: String) throws(DKIMError) -> String {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 128, bytes.allSatisfy({ $0 >= 33 && $0 <= 126 && $0 != ASCII.colon }) else {
            throw DKIMError(.invalidHeaderList, "\(name.debugDescription) is not a header field name")
        }
        return String(decoding: bytes.map(ASCII.lowercased), as: UTF8.self)
    }
}

/// Writes a `DKIM-Signature` field folded at tag boundaries, inside `h=` after a colon, and inside
/// the base64 of `b=`: all places where RFC 6376 §3.5 allows FWS. Lines stay within `width`
/// unless one tag is longer than that (a 253-character domain); none comes near 998 (RFC 5322 §2.1.1).
struct SignatureFieldWriter {
    let width: Int
    private(set) var text = "DKIM-Signature:"
    private var lineLength = 15

    init(width: Int) {
        self.width = width
    }

    /// Adds a tag after a space, or on a new line when it does not fit.
    mutating func append(token: String) {
        let length = token.utf8.count
        if lineLength + 1 + length <= width {
            text += " " + token
            lineLength += 1 + length
        } else {
            text += "\r\n " + token
            lineLength = 1 + length
        }
    }

    /// `h=a:b:c;`, folded after a colon where needed.
    mutating func append(headerList names: [String]) {
        for (index, name) in names.enumerated() {
            let piece = name + (index == names.count - 1 ? ";" : ":")
            if index == 0 {
                append(token: "h=" + piece)
            } else if lineLength + piece.utf8.count <= width {
                text += piece
                lineLength += piece.utf8.count
            } else {
                text += "\r\n " + piece
                lineLength = 1 + piece.utf8.count
            }
        }
    }

    /// `b=`, on a new line unless a fair part of the signature fits after it. The text up to here
    /// is what the signature covers.
    mutating func beginSignature() {
        if lineLength + 1 + 2 + 16 > width {
            text += "\r\n b="
            lineLength = 3
        } else {
            text += " b="
            lineLength += 3
        }
    }

    /// The base64 signature, filling each line and continuing on the next.
    mutating func appendSignature(_ base64: String) {
        var rest = Substring(base64)
        while !rest.isEmpty {
            if lineLength >= width {
                text += "\r\n "
                lineLength = 1
            }
            let take = min(width - lineLength, rest.count)
            text += rest.prefix(take)
            lineLength += take
            rest = rest.dropFirst(take)
        }
    }
}
