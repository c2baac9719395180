public import Crypto
public import _CryptoExtras

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A DKIM signing algorithm: the `a=` tag.
///
/// - SeeAlso: RFC 6376 §3.3 (rsa-sha256), RFC 8463 §3 (ed25519-sha256), RFC 8301 §3.1 (no rsa-sha1)
public enum DKIMSignatureAlgorithm: String, Sendable, Hashable, CaseIterable {
    case rsaSHA256 = "rsa-sha256"
    case ed25519SHA256 = "ed25519-sha256"

    /// The key type in the DNS record: the `k=` tag (RFC 6376 §3.6.1, RFC 8463 §4).
    public var keyType: String {
        switch self {
        case .rsaSHA256: "rsa"
        case .ed25519SHA256: "ed25519"
        }
    }
}

/// A private key a domain signs mail with.
///
/// RSA keys are 2048 to 4096 bits: RFC 8301 §3.2 makes 1024 the floor and 2048 the advice, and
/// verifiers need not accept more than 4096. ``DKIMSigner`` refuses anything outside that range,
/// however the key was made. Ed25519 keys (RFC 8463) are short enough for one TXT string, but
/// not every verifier knows them yet: sign with both (see ``DKIMSigner``).
public enum DKIMPrivateKey: Sendable {
    case rsa(_RSA.Signing.PrivateKey)
    case ed25519(Curve25519.Signing.PrivateKey)

    /// The smallest RSA modulus Tern signs with (RFC 8301 §3.2).
    public static let minimumRSABits = 2048
    /// The largest RSA modulus a verifier must accept (RFC 8301 §3.2).
    public static let maximumRSABits = 4096

    /// A new random RSA key (2048 bits unless told otherwise).
    public static func generateRSA(bits: Int = 2048) throws(DKIMError) -> DKIMPrivateKey {
        try checkRSASize(bits)
        do {
            return .rsa(try _RSA.Signing.PrivateKey(keySize: .init(bitCount: bits)))
        } catch {
            throw DKIMError(.invalidKey, "could not generate a \(bits)-bit RSA key: \(error)")
        }
    }

    /// A new random Ed25519 key.
    public static func generateEd25519() -> DKIMPrivateKey {
        .ed25519(Curve25519.Signing.PrivateKey())
    }

    /// Reads a key from PEM: PKCS#8 (`BEGIN PRIVATE KEY`, RSA or Ed25519) or PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`). Encrypted keys are refused.
    ///
    /// - SeeAlso: RFC 7468 §10 (PKCS#8 PEM), RFC 8017 Appendix A.1.2 (PKCS#1), RFC 8410 §7
    public init(pemRepresentation pem: String) throws(DKIMError) {
        guard let document = PEM.firstDocument(in: pem) else {
            throw DKIMError(.invalidKey, "no PEM block (-----BEGIN …-----) that decodes as base64")
        }
        switch document.label {
        case "RSA PRIVATE KEY":
            self = try Self.loadRSA(pem)
        case "PRIVATE KEY":
            guard let oid = PEM.pkcs8AlgorithmOID(document.der) else {
                throw DKIMError(.invalidKey, "the PRIVATE KEY block is not a PKCS#8 PrivateKeyInfo")
            }
            if oid.elementsEqual(PEM.rsaEncryptionOID) {
                self = try Self.loadRSA(pem)
            } else if oid.elementsEqual(PEM.ed25519OID) {
                do {
                    self = .ed25519(try Curve25519.Signing.PrivateKey(derRepresentation: document.der))
                } catch {
                    throw DKIMError(.invalidKey, "the Ed25519 PKCS#8 key does not decode")
                }
            } else {
                throw DKIMError(.unsupportedKey, "the PKCS#8 key is neither RSA nor Ed25519 (DKIM signs with rsa-sha256 or ed25519-sha256)")
            }
        default:
            if document.label.contains("ENCRYPTED") {
                throw DKIMError(.unsupportedKey, "encrypted private keys are not supported; decrypt it (openssl pkey) first")
            }
            throw DKIMError(.unsupportedKey, "a \(document.label) is not an RSA or Ed25519 private key")
        }
    }

    private static func loadRSA(_ pem: String) throws(DKIMError) -> DKIMPrivateKey {
        let key: _RSA.Signing.PrivateKey
        do {
            // The unsafe initialiser reads 1024-bit keys too, so that a short key gets our error
            // (which says why) rather than a bare "incorrect parameter size".
            key = try _RSA.Signing.PrivateKey(unsafePEMRepresentation: pem)
        } catch {
            throw DKIMError(.invalidKey, "the RSA key does not decode (or is shorter than 1024 bits)")
        }
        try checkRSASize(key.keySizeInBits)
        return .rsa(key)
    }

    static func checkRSASize(_ bits: Int) throws(DKIMError) {
        guard bits >= minimumRSABits else {
            throw DKIMError(.keyTooWeak, "a \(bits)-bit RSA key is too weak; RFC 8301 §3.2 asks for at least \(minimumRSABits) bits")
        }
        guard bits <= maximumRSABits else {
            throw DKIMError(.keyTooLarge, "a \(bits)-bit RSA key may be refused; verifiers need only accept up to \(maximumRSABits) bits (RFC 8301 §3.2)")
        }
    }

    /// The key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), for both types.
    public var pemRepresentation: String {
        switch self {
        case .rsa(let key): key.pkcs8PEMRepresentation
        case .ed25519(let key): key.pemRepresentation
        }
    }

    /// The `a=` algorithm this key signs with.
    public var algorithm: DKIMSignatureAlgorithm {
        switch self {
        case .rsa: .rsaSHA256
        case .ed25519: .ed25519SHA256
        }
    }

    /// Bits of the RSA modulus, or 256 for Ed25519.
    public var keySizeInBits: Int {
        switch self {
        case .rsa(let key): key.keySizeInBits
        case .ed25519: 256
        }
    }

    /// The public key as the `p=` tag carries it, in base64: the DER SubjectPublicKeyInfo for RSA
    /// (RFC 6376 §3.6.1), the raw 32-byte key for Ed25519 (RFC 8463 §4).
    public var publicKeyBase64: String {
        switch self {
        case .rsa(let key): key.publicKey.derRepresentation.base64EncodedString()
        case .ed25519(let key): key.publicKey.rawRepresentation.base64EncodedString()
        }
    }

    /// The TXT record to publish at `selector._domainkey.domain`:
    /// `v=DKIM1; k=rsa; p=…` or `v=DKIM1; k=ed25519; p=…`.
    ///
    /// An RSA-2048 record is longer than one 255-byte character-string: publish it as several
    /// (``DKIMKeyRecord/characterStrings(_:maximumLength:)``).
    ///
    /// - SeeAlso: RFC 6376 §3.6.1, RFC 8463 §4
    public var dnsRecordValue: String {
        "v=DKIM1; k=\(algorithm.keyType); p=\(publicKeyBase64)"
    }
}

/// Helpers for publishing a key record in DNS.
///
/// - SeeAlso: RFC 6376 §3.6.2.2 (the strings of a TXT record are concatenated), RFC 1035 §3.3.14
public enum DKIMKeyRecord {
    /// The owner name of the key record: `selector._domainkey.domain` (RFC 6376 §3.6.2.1).
    public static func name(selector: String, domain: String) -> String {
        "\(selector)._domainkey.\(domain)"
    }

    /// Splits a TXT value into character-strings of at most `maximumLength` bytes (a DNS
    /// character-string holds 255), in order; a verifier concatenates them without separators.
    /// An empty value is one empty string.
    public static func characterStrings(_ value: String, maximumLength: Int = 255) -> [String] {
        let bytes = Array(value.utf8)
        let size = max(1, min(maximumLength, 255))
        guard !bytes.isEmpty else { return [""] }
        var strings: [String] = []
        var start = 0
        while start < bytes.count {
            var end = min(start + size, bytes.count)
            // Never cut inside a UTF-8 sequence (a DKIM record is ASCII, but be safe).
            while end < bytes.count, end > start + 1, bytes[end] & 0xC0 == 0x80 { end -= 1 }
            strings.append(String(decoding: bytes[start..<end], as: UTF8.self))
            start = end
        }
        return strings
    }

    /// The value as a zone file writes it: quoted character-strings separated by spaces,
    /// `"v=DKIM1; k=rsa; p=MIIB…" "…IDAQAB"`, with `"` and `\` escaped (RFC 1035 §5.1).
    public static func zoneFileText(_ value: String) -> String {
        characterStrings(value).map { string in
            var quoted = "\""
            for character in string {
                if character == "\"" || character == "\\" { quoted.append("\\") }
                quoted.append(character)
            }
            return quoted + "\""
        }.joined(separator: " ")
    }
}
