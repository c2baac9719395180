import Foundation
import Testing

@testable import DKIM

/// The signature field Tern writes: tags, the `h=` list, folding, and refusals.
struct DKIMSignerTests {
    static let message = crlf(
        """
        Received: from client.example.com by mx.example.com; Tue, 2 Jun 2026 10:00:00 +0000
        From: Ada <ada@example.com>
        To: Bob <bob@example.net>
        Subject: Hello
        Date: Tue, 02 Jun 2026 10:00:00 +0000
        Message-ID: <1@example.com>
        MIME-Version: 1.0
        Content-Type: text/plain; charset=utf-8
        X-Mailer: Tern

        Hi Bob.

        """)
    static let now = Date(timeIntervalSince1970: 1_780_394_400)

    static func signer(_ key: DKIMPrivateKey = TestKeys.ed25519, headersToSign: [String] = DKIMSigner.defaultHeadersToSign, oversign: [String] = DKIMSigner.defaultOversign) throws -> DKIMSigner {
        try DKIMSigner(domain: "example.com", selector: "tern2026", key: key, headersToSign: headersToSign, oversign: oversign)
    }

    @Test(arguments: [TestKeys.rsa, TestKeys.ed25519])
    func fieldShape(key: DKIMPrivateKey) throws {
        let field = try Self.signer(key).sign(message: Self.message, timestamp: Self.now)
        #expect(field.hasPrefix("DKIM-Signature: v=1; a=\(key.algorithm.rawValue); c=relaxed/relaxed; d=example.com;"))
        #expect(field.hasSuffix("\r\n"))
        let lines = field.dropLast(2).components(separatedBy: "\r\n")
        for (index, line) in lines.enumerated() {
            #expect(line.utf8.count <= 78, "line \(index) has \(line.utf8.count) characters: \(line)")
            if index > 0 { #expect(line.hasPrefix(" "), "continuation line \(index) starts with WSP") }
            #expect(!line.hasSuffix(" "), "no trailing WSP on line \(index)")
        }
        let tags = SignatureTags(field)
        #expect(tags.names == ["v", "a", "c", "d", "s", "t", "h", "bh", "b"])
        #expect(tags["l"] == nil)
        #expect(tags["s"] == "tern2026")
        #expect(tags["t"] == "1780394400")
        #expect(tags["bh"] == base64(DKIMBodyHasher.hash(crlf("Hi Bob.\n"))))
        let value = try #require(tags["b"])
        let b = try #require(Data(base64Encoded: value))
        #expect(b.count == (key.algorithm == .rsaSHA256 ? 256 : 64))
    }

    @Test func headerListSignsPresentFieldsAndOversigns() throws {
        let field = try Self.signer().sign(message: Self.message, timestamp: Self.now)
        // Present fields of the default list in its order (not Received, not X-Mailer), then the
        // oversigned names once more, present or not.
        #expect(
            SignatureTags(field)["h"]
                == "from:subject:date:to:message-id:mime-version:content-type"
                + ":from:subject:date:to:message-id:list-unsubscribe:list-unsubscribe-post")
    }

    /// Over-signing at the level of the signed data: adding a field of an oversigned name, above
    /// or below, or one that was absent, changes what `h=` covers; adding another field does not.
    @Test(arguments: ["From", "Subject", "Date", "To", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"])
    func addingAnOversignedFieldChangesTheSignedData(name: String) throws {
        let signer = try Self.signer()
        let split = DKIMSigner.headerEnd(Self.message)
        let original = try HeaderSection(Array(Self.message[..<split.headerEnd]))
        let names = signer.signedHeaderNames(for: original).map { Array($0.utf8) }
        let signed = original.canonicalData(signing: names, using: .relaxed)
        let added = crlf("\(name): added\n")
        let above = try HeaderSection(added + Array(Self.message[..<split.headerEnd]))
        let below = try HeaderSection(Array(Self.message[..<split.headerEnd]) + added)
        #expect(above.canonicalData(signing: names, using: .relaxed) != signed, "\(name) added above")
        #expect(below.canonicalData(signing: names, using: .relaxed) != signed, "\(name) added below")
        let unsigned = try HeaderSection(crlf("X-Added: x\nReceived: by mx\n") + Array(Self.message[..<split.headerEnd]))
        #expect(unsigned.canonicalData(signing: names, using: .relaxed) == signed)
    }

    @Test func repeatedFieldsAreListedAsOftenAsPresent() throws {
        let message = crlf("From: a@example.com\nTo: b@example.net\nTo: c@example.net\nCc: d@example.net\nCc: e@example.net\n\nx\n")
        let field = try Self.signer(headersToSign: ["From", "To", "Cc"], oversign: ["From", "To"]).sign(message: message)
        #expect(SignatureTags(field)["h"] == "from:to:to:cc:cc:from:to")
    }

    @Test func namesAreMatchedWhateverTheirCase() throws {
        let message = crlf("FROM: a@example.com\nsubject: x\nMESSAGE-id: <1@x>\n\nbody\n")
        let field = try Self.signer(headersToSign: ["From", "Subject", "Message-ID"], oversign: []).sign(message: message)
        #expect(SignatureTags(field)["h"] == "from:subject:message-id")
    }

    @Test func headerInstancesAreTakenFromTheBottom() throws {
        let header = try HeaderSection(crlf("X: 1\nY: a\nX: 2\nX: 3\n"))
        let x = Array("x".utf8)
        let y = Array("y".utf8)
        #expect(header.canonicalData(signing: [x, x], using: .relaxed) == crlf("x:3\nx:2\n"))
        #expect(header.canonicalData(signing: [x, y, x, x, x], using: .relaxed) == crlf("x:3\ny:a\nx:2\nx:1\n"))
        #expect(header.canonicalData(signing: [Array("z".utf8)], using: .relaxed) == [])
    }

    @Test func timestampIsOptionalAndWholeSeconds() throws {
        let signer = try Self.signer()
        #expect(SignatureTags(try signer.sign(message: Self.message))["t"] == nil)
        #expect(SignatureTags(try signer.sign(message: Self.message, timestamp: Date(timeIntervalSince1970: 1_528_637_909.9)))["t"] == "1528637909")
    }

    @Test func signMessageEqualsHeaderPlusStreamedBody() throws {
        let signer = try Self.signer()
        let split = DKIMSigner.headerEnd(Self.message)
        var hasher = signer.makeBodyHasher()
        for byte in Self.message[split.bodyStart...] { hasher.update([byte]) }
        let field = try signer.signatureField(header: Array(Self.message[..<split.headerEnd]), bodyHash: hasher.finalize(), timestamp: Self.now)
        #expect(field == (try signer.sign(message: Self.message, timestamp: Self.now)))
    }

    @Test func headerEnd() {
        #expect(DKIMSigner.headerEnd(crlf("A: b\n\nbody")) == (6, 8))
        #expect(DKIMSigner.headerEnd(crlf("A: b\nC: d\n")) == (12, 12))  // no body at all
        #expect(DKIMSigner.headerEnd(crlf("\nbody")) == (0, 2))
        #expect(DKIMSigner.headerEnd(crlf("A: b\n\n")) == (6, 8))
        #expect(DKIMSigner.headerEnd([]) == (0, 0))
    }

    @Test func messageWithoutBodyHashesAnEmptyBody() throws {
        let field = try Self.signer().sign(message: crlf("From: a@example.com\nSubject: x\n"))
        #expect(SignatureTags(field)["bh"] == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
    }

    @Test func longValuesStillFold() throws {
        let domain = (0..<4).map { _ in String(repeating: "d", count: 62) }.joined(separator: ".")  // 251 characters
        let signer = try DKIMSigner(domain: domain, selector: "s", key: TestKeys.rsa)
        let headers = (0..<30).map { "X-Header-With-A-Longish-Name-\($0)" }
        let wide = try DKIMSigner(domain: "example.com", selector: "s", key: TestKeys.rsa, headersToSign: ["From"] + headers, oversign: ["From"])
        let message = crlf("From: a@example.com\n" + headers.map { "\($0): v\n" }.joined() + "\nbody\n")
        for field in [try signer.sign(message: message), try wide.sign(message: message)] {
            let lines = field.dropLast(2).components(separatedBy: "\r\n")
            #expect(lines.allSatisfy { $0.utf8.count <= 998 })
            // Only the d= line may pass 78 characters.
            #expect(lines.filter { $0.utf8.count > 78 }.allSatisfy { $0.contains("d=\(domain);") })
        }
        let tags = SignatureTags(try wide.sign(message: message))
        #expect(tags["h"] == (["from"] + headers.map { $0.lowercased() } + ["from"]).joined(separator: ":"))
    }

    @Test func refusesMessagesWithoutFrom() throws {
        let signer = try Self.signer()
        DKIMPrivateKeyTests.expectError(.missingFrom) { _ = try signer.sign(message: crlf("To: b@example.net\nSubject: x\n\nFrom: not a header\n")) }
        DKIMPrivateKeyTests.expectError(.missingFrom) { _ = try signer.sign(message: crlf("\nFrom: a@example.com\n")) }
        DKIMPrivateKeyTests.expectError(.missingFrom) { _ = try signer.sign(message: []) }
        DKIMPrivateKeyTests.expectError(.missingFrom) {
            _ = try signer.signatureField(header: crlf("Sender: a@example.com\n"), bodyHash: Array(repeating: 0, count: 32), timestamp: nil)
        }
    }

    @Test func refusesMalformedHeaders() throws {
        let signer = try Self.signer()
        DKIMPrivateKeyTests.expectError(.malformedHeader) { _ = try signer.sign(message: crlf("From: a@example.com\nnot a field\n\nx\n")) }
        DKIMPrivateKeyTests.expectError(.malformedHeader) { _ = try signer.sign(message: crlf(" folded: first\nFrom: a@example.com\n\nx\n")) }
        DKIMPrivateKeyTests.expectError(.malformedHeader) { _ = try signer.sign(message: crlf(": no name\nFrom: a@example.com\n\nx\n")) }
    }

    @Test func refusesBadBodyHash() throws {
        DKIMPrivateKeyTests.expectError(.invalidBodyHash) {
            _ = try Self.signer().signatureField(header: crlf("From: a@example.com\n"), bodyHash: [1, 2, 3], timestamp: nil)
        }
    }

    @Test func refusesBadConfiguration() {
        let key = TestKeys.ed25519
        for domain in ["", "example..com", "-example.com", "example-.com", "exa mple.com", "example.com.", "exämple.com", String(repeating: "a", count: 64) + ".com"] {
            DKIMPrivateKeyTests.expectError(.invalidDomain) { _ = try DKIMSigner(domain: domain, selector: "s", key: key) }
        }
        for selector in ["", "a;b", "s=1", "a b", "_x"] {
            DKIMPrivateKeyTests.expectError(.invalidSelector) { _ = try DKIMSigner(domain: "example.com", selector: selector, key: key) }
        }
        DKIMPrivateKeyTests.expectError(.invalidHeaderList) { _ = try DKIMSigner(domain: "example.com", selector: "s", key: key, headersToSign: ["Subject"], oversign: []) }
        DKIMPrivateKeyTests.expectError(.invalidHeaderList) { _ = try DKIMSigner(domain: "example.com", selector: "s", key: key, headersToSign: ["From"], oversign: ["Subject"]) }
        DKIMPrivateKeyTests.expectError(.invalidHeaderList) { _ = try DKIMSigner(domain: "example.com", selector: "s", key: key, headersToSign: ["From", "Bad:Name"], oversign: []) }
        DKIMPrivateKeyTests.expectError(.invalidHeaderList) { _ = try DKIMSigner(domain: "example.com", selector: "s", key: key, headersToSign: ["From", "Bad Name"], oversign: []) }
        DKIMPrivateKeyTests.expectError(.invalidHeaderList) { _ = try DKIMSigner(domain: "example.com", selector: "s", key: key, headersToSign: ["From", ""], oversign: []) }
    }

    @Test func acceptsOrdinaryNames() throws {
        let signer = try DKIMSigner(domain: "Mail-1.Example.co.uk", selector: "2026-06.tern", key: TestKeys.ed25519, headersToSign: ["from", "FROM", "Subject"], oversign: ["From", "from"])
        #expect(signer.headersToSign == ["from", "subject"])
        #expect(signer.oversign == ["from"])
    }

    @Test func simpleCanonicalizationIsNamedInTheField() throws {
        let signer = try DKIMSigner(domain: "example.com", selector: "s", key: TestKeys.ed25519, canonicalization: (.simple, .simple))
        let field = try signer.sign(message: Self.message)
        #expect(SignatureTags(field)["c"] == "simple/simple")
        #expect(SignatureTags(field)["bh"] == base64(DKIMBodyHasher.hash(crlf("Hi Bob.\n"), canonicalization: .simple)))
    }
}
