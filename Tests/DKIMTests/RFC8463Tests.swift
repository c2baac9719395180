import Crypto
import Foundation
import Testing
import _CryptoExtras

@testable import DKIM

/// RFC 8463 Appendix A: the published keys, message and signatures.
struct RFC8463Tests {
    static func ed25519Key() throws -> Curve25519.Signing.PrivateKey {
        try Curve25519.Signing.PrivateKey(rawRepresentation: Data(base64Encoded: RFC8463.ed25519Seed) ?? Data())
    }

    /// A published field cut just after `b=`: what the signature covers (RFC 6376 §3.7).
    static func withoutSignatureValue(_ field: String) throws -> [UInt8] {
        let bytes = crlf(field)
        let b = try #require(bytes.firstRange(of: Array(" b=".utf8)))
        return Array(bytes[..<b.upperBound])
    }

    static let signedNames = ["from", "to", "subject", "date", "message-id", "from", "subject", "date"].map { Array($0.utf8) }

    @Test func bodyHash() {
        #expect(base64(DKIMBodyHasher.hash(crlf(RFC8463.body))) == RFC8463.bodyHash)
    }

    @Test func ed25519PublicKeyAndRecord() throws {
        let key = DKIMPrivateKey.ed25519(try Self.ed25519Key())
        #expect(key.publicKeyBase64 == RFC8463.ed25519Public)
        #expect(key.dnsRecordValue == "v=DKIM1; k=ed25519; p=\(RFC8463.ed25519Public)")
    }

    /// The published Ed25519 `b=`, byte for byte: Ed25519 is deterministic, so the same key and
    /// the same canonical header give the same signature.
    @Test func reproducesPublishedEd25519Signature() throws {
        let signature = try DKIMSigner.signature(
            header: try HeaderSection(crlf(RFC8463.header)), signedNames: Self.signedNames,
            signatureFieldWithoutValue: try Self.withoutSignatureValue(RFC8463.ed25519Field),
            canonicalization: .relaxed, key: .ed25519(try Self.ed25519Key()))
        #expect(base64(signature) == RFC8463.ed25519Signature)
    }

    /// The published RSA `b=` too (RSASSA-PKCS1-v1_5 is deterministic). The key is 1024 bits:
    /// `DKIMSigner` would refuse it, so this goes below the signer's key check.
    @Test func reproducesPublishedRSASignature() throws {
        let rsa = try _RSA.Signing.PrivateKey(unsafePEMRepresentation: RFC8463.rsaPrivateKeyPEM)
        #expect(rsa.keySizeInBits == 1024)
        let signature = try DKIMSigner.signature(
            header: try HeaderSection(crlf(RFC8463.header)), signedNames: Self.signedNames,
            signatureFieldWithoutValue: try Self.withoutSignatureValue(RFC8463.rsaField),
            canonicalization: .relaxed, key: .rsa(rsa))
        #expect(base64(signature) == RFC8463.rsaSignature)
    }

    /// A wrong byte anywhere in the signed data gives another signature: the test above can fail.
    @Test func anotherHeaderGivesAnotherSignature() throws {
        let header = crlf(RFC8463.header.replacingOccurrences(of: "Is dinner ready?", with: "Is dinner ready!"))
        let signature = try DKIMSigner.signature(
            header: try HeaderSection(header), signedNames: Self.signedNames,
            signatureFieldWithoutValue: try Self.withoutSignatureValue(RFC8463.ed25519Field),
            canonicalization: .relaxed, key: .ed25519(try Self.ed25519Key()))
        #expect(base64(signature) != RFC8463.ed25519Signature)
    }

    /// Tern's own field for the example: same `bh=` and the same `h=` as published. Its `b=`
    /// differs from the published one because the field text differs (no `i=` or `q=`, `h=`
    /// without spaces), and that text is part of what is signed.
    @Test func signerMakesTheExampleSignature() throws {
        let signer = try DKIMSigner(
            domain: "football.example.com", selector: "brisbane", key: .ed25519(try Self.ed25519Key()),
            headersToSign: ["From", "To", "Subject", "Date", "Message-ID"], oversign: ["From", "Subject", "Date"])
        let field = try signer.sign(message: RFC8463.message, timestamp: Date(timeIntervalSince1970: RFC8463.timestamp))
        let tags = SignatureTags(field)
        #expect(tags["a"] == "ed25519-sha256")
        #expect(tags["c"] == "relaxed/relaxed")
        #expect(tags["d"] == "football.example.com")
        #expect(tags["s"] == "brisbane")
        #expect(tags["t"] == "1528637909")
        #expect(tags["h"] == "from:to:subject:date:message-id:from:subject:date")
        #expect(tags["bh"] == RFC8463.bodyHash)
        // Deterministic: signing again gives the same field.
        #expect(try signer.sign(message: RFC8463.message, timestamp: Date(timeIntervalSince1970: RFC8463.timestamp)) == field)

        // The signature checks out against the published public key, over the data RFC 6376 §3.7 names.
        let publicKey = try Curve25519.Signing.PublicKey(rawRepresentation: Data(base64Encoded: RFC8463.ed25519Public) ?? Data())
        var data = try HeaderSection(crlf(RFC8463.header)).canonicalData(signing: Self.signedNames, using: .relaxed)
        let bh = try #require(field.range(of: "bh="))
        let withoutValue = try #require(field.range(of: " b=", range: bh.upperBound..<field.endIndex)).upperBound
        HeaderCanonicalization.appendRelaxed(Array(field[..<withoutValue].utf8), to: &data)
        let value = try #require(tags["b"])
        let signature = try #require(Data(base64Encoded: value))
        #expect(publicKey.isValidSignature(signature, for: Array(SHA256.hash(data: data))))
    }
}

extension HeaderCanonicalization {
    /// Test helper: relaxed form of one field given as bytes, without a final CRLF.
    static func appendRelaxed(_ field: [UInt8], to out: inout [UInt8]) {
        guard let colon = field.firstIndex(of: ASCII.colon) else { return }
        field.withUnsafeBufferPointer { appendRelaxed($0, colon: colon, terminate: false, to: &out) }
    }
}

/// The tags of a `DKIM-Signature` field, with folding whitespace removed from the values.
struct SignatureTags {
    var tags: [String: String] = [:]
    var names: [String] = []

    init(_ field: String) {
        var value = field
        if let colon = value.firstIndex(of: ":") { value = String(value[value.index(after: colon)...]) }
        for part in value.split(separator: ";") {
            let compact = part.filter { !$0.isWhitespace }
            guard let eq = compact.firstIndex(of: "=") else { continue }
            let name = String(compact[..<eq])
            tags[name] = String(compact[compact.index(after: eq)...])
            names.append(name)
        }
    }

    subscript(_ name: String) -> String? { tags[name] }
}
