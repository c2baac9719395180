import Crypto
import Foundation
import Testing
import _CryptoExtras

@testable import DKIM

/// One RSA-2048 key for the whole test run: generating one takes a while.
enum TestKeys {
    static let rsa: DKIMPrivateKey = {
        do {
            return try DKIMPrivateKey.generateRSA()
        } catch {
            fatalError("cannot generate an RSA key: \(error)")
        }
    }()
    static let ed25519 = DKIMPrivateKey.generateEd25519()
}

struct DKIMPrivateKeyTests {
    static func expectError(_ code: DKIMError.Code, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try body()
            Issue.record("expected \(code), got no error", sourceLocation: sourceLocation)
        } catch let error as DKIMError {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected DKIMError \(code), got \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func generatedRSAIs2048BitsByDefault() throws {
        #expect(TestKeys.rsa.keySizeInBits == 2048)
        #expect(TestKeys.rsa.algorithm == .rsaSHA256)
        #expect(TestKeys.ed25519.algorithm == .ed25519SHA256)
    }

    @Test func rsaRecordCarriesTheSubjectPublicKeyInfo() throws {
        guard case .rsa(let key) = TestKeys.rsa else { Issue.record("not RSA"); return }
        let record = TestKeys.rsa.dnsRecordValue
        #expect(record.hasPrefix("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"))  // SPKI, rsaEncryption, 2048 bits
        let p = try #require(record.components(separatedBy: "p=").last)
        let der = try #require(Data(base64Encoded: p))
        let publicKey = try _RSA.Signing.PublicKey(derRepresentation: der)
        #expect(publicKey.derRepresentation == key.publicKey.derRepresentation)
    }

    @Test func ed25519RecordCarriesTheRawKey() throws {
        guard case .ed25519(let key) = TestKeys.ed25519 else { Issue.record("not Ed25519"); return }
        let record = TestKeys.ed25519.dnsRecordValue
        #expect(record.hasPrefix("v=DKIM1; k=ed25519; p="))
        let value = try #require(record.components(separatedBy: "p=").last)
        let p = try #require(Data(base64Encoded: value))
        #expect(p.count == 32)
        #expect(p == key.publicKey.rawRepresentation)
    }

    @Test func rsaKeySizeLimits() {
        Self.expectError(.keyTooWeak) { _ = try DKIMPrivateKey.generateRSA(bits: 1024) }
        Self.expectError(.keyTooLarge) { _ = try DKIMPrivateKey.generateRSA(bits: 8192) }
    }

    @Test func pkcs8RoundTrip() throws {
        for key in [TestKeys.rsa, TestKeys.ed25519] {
            let pem = key.pemRepresentation
            #expect(pem.hasPrefix("-----BEGIN PRIVATE KEY-----"))
            let loaded = try DKIMPrivateKey(pemRepresentation: pem)
            #expect(loaded.algorithm == key.algorithm)
            #expect(loaded.publicKeyBase64 == key.publicKeyBase64)
        }
    }

    @Test func rsaFromPKCS1() throws {
        guard case .rsa(let key) = TestKeys.rsa else { Issue.record("not RSA"); return }
        let pkcs1 = key.pemRepresentation
        #expect(pkcs1.hasPrefix("-----BEGIN RSA PRIVATE KEY-----"))
        let loaded = try DKIMPrivateKey(pemRepresentation: "# dkim key for example.com\n" + pkcs1 + "\n")
        #expect(loaded.algorithm == .rsaSHA256)
        #expect(loaded.publicKeyBase64 == TestKeys.rsa.publicKeyBase64)
    }

    @Test func ed25519FromRFC8410PKCS8() throws {
        // The RFC 8463 key as a PKCS#8 file (RFC 8410 §7 layout).
        let pem = """
            -----BEGIN PRIVATE KEY-----
            MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g
            -----END PRIVATE KEY-----
            """
        let key = try DKIMPrivateKey(pemRepresentation: pem)
        #expect(key.algorithm == .ed25519SHA256)
        #expect(key.publicKeyBase64 == RFC8463.ed25519Public)
    }

    @Test func shortRSAKeyIsRefused() {
        Self.expectError(.keyTooWeak) { _ = try DKIMPrivateKey(pemRepresentation: RFC8463.rsaPrivateKeyPEM) }
    }

    @Test func signerRefusesShortRSAKeyHoweverMade() throws {
        let short = try _RSA.Signing.PrivateKey(unsafePEMRepresentation: RFC8463.rsaPrivateKeyPEM)
        Self.expectError(.keyTooWeak) { _ = try DKIMSigner(domain: "example.com", selector: "s", key: .rsa(short)) }
    }

    @Test func otherKeysAreRefused() {
        Self.expectError(.unsupportedKey) { _ = try DKIMPrivateKey(pemRepresentation: P256.Signing.PrivateKey().pemRepresentation) }
        Self.expectError(.unsupportedKey) { _ = try DKIMPrivateKey(pemRepresentation: Curve25519.KeyAgreement.PrivateKey().pemRepresentation) }
        Self.expectError(.unsupportedKey) {
            _ = try DKIMPrivateKey(pemRepresentation: "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjAp\n-----END ENCRYPTED PRIVATE KEY-----\n")
        }
        Self.expectError(.unsupportedKey) {
            _ = try DKIMPrivateKey(
                pemRepresentation: "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n")
        }
        Self.expectError(.invalidKey) { _ = try DKIMPrivateKey(pemRepresentation: "not a key") }
        Self.expectError(.invalidKey) { _ = try DKIMPrivateKey(pemRepresentation: "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n") }
        Self.expectError(.invalidKey) { _ = try DKIMPrivateKey(pemRepresentation: "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n") }
        Self.expectError(.invalidKey) { _ = try DKIMPrivateKey(pemRepresentation: "-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----\n") }
    }

    @Test func errorsDoNotEchoKeyMaterial() {
        let pem = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXZhbHVlLXNlY3JldA==\n-----END PRIVATE KEY-----\n"
        do {
            _ = try DKIMPrivateKey(pemRepresentation: pem)
            Issue.record("expected an error")
        } catch {
            #expect(!error.description.contains("c2VjcmV0"))
        }
    }

    @Test func recordNameAndCharacterStrings() throws {
        #expect(DKIMKeyRecord.name(selector: "tern2026", domain: "example.com") == "tern2026._domainkey.example.com")

        let record = TestKeys.rsa.dnsRecordValue
        #expect(record.utf8.count > 255)
        let strings = DKIMKeyRecord.characterStrings(record)
        #expect(strings.count == 2)
        #expect(strings.allSatisfy { $0.utf8.count <= 255 })
        #expect(strings[0].utf8.count == 255)
        #expect(strings.joined() == record)

        #expect(DKIMKeyRecord.characterStrings("") == [""])
        #expect(DKIMKeyRecord.characterStrings("short") == ["short"])
        #expect(DKIMKeyRecord.characterStrings("abcdefghij", maximumLength: 4) == ["abcd", "efgh", "ij"])
        #expect(DKIMKeyRecord.characterStrings(String(repeating: "x", count: 510)).map(\.count) == [255, 255])

        let zone = DKIMKeyRecord.zoneFileText(record)
        #expect(zone == "\"\(strings[0])\" \"\(strings[1])\"")
        #expect(DKIMKeyRecord.zoneFileText("a\"b\\c") == "\"a\\\"b\\\\c\"")
        #expect(DKIMKeyRecord.zoneFileText(TestKeys.ed25519.dnsRecordValue) == "\"\(TestKeys.ed25519.dnsRecordValue)\"")
    }

    @Test func rsa4096RecordSplitsInThree() throws {
        let key = try DKIMPrivateKey.generateRSA(bits: 4096)
        let strings = DKIMKeyRecord.characterStrings(key.dnsRecordValue)
        #expect(strings.count == 3)
        #expect(strings.joined() == key.dnsRecordValue)
    }
}
