import Foundation
import Testing

@testable import DKIM

/// Signs messages with Tern and verifies them with Python's dkimpy, an independent verifier,
/// with the key record handed to it instead of DNS. Tampered copies must fail.
///
/// dkimpy is required: without it these tests fail and say `pip install 'dkimpy[ed25519]'`
/// (scripts/test installs it).
struct DkimpyVerificationTests {
    /// Verifies each case with dkimpy and prints one JSON result per case.
    /// `dkim.verify` checks the first signature; `DKIM(...).verify(idx=)` the others.
    static let script = #"""
    import base64, json, sys
    import dkim
    cases = json.load(open(sys.argv[1]))
    results = []
    for case in cases:
        message = base64.b64decode(case["message"])
        records = {name.encode(): value.encode() for name, value in case["records"].items()}
        queried = []
        def dnsfunc(name, timeout=5):
            queried.append(name.decode())
            return records.get(name)
        try:
            if case["index"] == 0:
                ok = dkim.verify(message, dnsfunc=dnsfunc)
            else:
                ok = dkim.DKIM(message).verify(idx=case["index"], dnsfunc=dnsfunc)
            results.append({"ok": bool(ok), "queried": queried, "error": ""})
        except Exception as e:
            results.append({"ok": False, "queried": queried, "error": repr(e)})
    print(json.dumps(results))
    """#

    struct Case: Encodable {
        var name: String
        var message: String  // base64
        var records: [String: String]
        var index: Int
        var expectPass: Bool
    }

    struct Result: Decodable {
        var ok: Bool
        var queried: [String]
        var error: String
    }

    static let python: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/usr/local/bin"
        return path.split(separator: ":").map { "\($0)/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static func run(_ arguments: [String], input: [UInt8]? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(python, "python3 not found on PATH; DKIM tests need python3 with dkimpy"))
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Fails the test (never skips) when dkimpy or PyNaCl is missing.
    static func requireDkimpy() throws {
        let check = try run(["-c", "import dkim, nacl"])
        try #require(check.status == 0, "dkimpy with Ed25519 support is not installed: pip install 'dkimpy[ed25519]' (dkimpy and pynacl). \(check.output)")
    }

    static func verify(_ cases: [Case]) throws -> [Result] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tern-dkim-\(UUID().uuidString).json")
        try JSONEncoder().encode(cases).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try run(["-c", script, file.path])
        try #require(result.status == 0, "dkimpy script failed: \(result.output)")
        let results = try JSONDecoder().decode([Result].self, from: Data(result.output.utf8))
        try #require(results.count == cases.count)
        return results
    }

    /// The messages signed: one per shape the signer must get right.
    static let messages: [(String, [UInt8])] = [
        ("plain", crlf("""
            From: Ada <ada@example.com>
            To: Bob <bob@example.net>
            Subject: Plain
            Date: Tue, 02 Jun 2026 10:00:00 +0000
            Message-ID: <plain@example.com>

            Hello Bob.
            """ + "\n")),
        ("long folded headers", crlf("""
            From: "A very long display name that goes on and on, Esq." <long.sender.address@example.com>
            To: First Recipient <first@example.net>, Second Recipient <second@example.net>,
             Third Recipient <third@example.net>, Fourth Recipient <fourth@example.net>,
            \tFifth Recipient <fifth@example.net>
            Subject: =?utf-8?q?A_subject_line_that_is_long_enough_to_need_folding_in?=
             =?utf-8?q?_a_second_encoded_word_and_then_a_third?=
              =?utf-8?q?_with_extra_whitespace?=
            Date: Tue, 02 Jun 2026 10:00:00 +0000
            Message-ID: <folded@example.com>
            References: <a@example.com> <b@example.com> <c@example.com> <d@example.com>
             <e@example.com> <f@example.com>
            X-Unsigned:    spaces    everywhere   

            Body.
            """ + "\n")),
        ("8-bit UTF-8", crlf("""
            From: Zoë <zoe@example.com>
            To: Łukasz <lukasz@example.net>
            Subject: Grüße aus München — 東京
            Date: Tue, 02 Jun 2026 10:00:00 +0000
            Message-ID: <utf8@example.com>
            MIME-Version: 1.0
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: 8bit

            Dziękujemy za zamówienie!   Ça coûte 12,50 €.\t
            日本語のテキスト。
            """ + "\n")),
        ("trailing blank lines and whitespace", crlf("""
            From: a@example.com
            Subject: Trailing
            Message-ID: <trailing@example.com>

            line with trailing spaces   \t
            \t  indented  with   runs\t\t
            """ + "\n\n\n   \n\t\n\n")),
        ("empty body", crlf("From: a@example.com\nSubject: Empty\nMessage-ID: <empty@example.com>\n\n")),
        ("no body separator", crlf("From: a@example.com\nSubject: Header only\n")),
        ("no final CRLF", Array("From: a@example.com\r\nSubject: Unterminated\r\n\r\nlast line".utf8)),
        ("multipart HTML", crlf("""
            From: Shop <shop@example.com>
            To: customer@example.net
            Subject: Your order
            Date: Tue, 02 Jun 2026 10:00:00 +0000
            Message-ID: <multipart@example.com>
            MIME-Version: 1.0
            Content-Type: multipart/alternative; boundary="b1"
            List-Unsubscribe: <https://t.example.com/u/abc>, <mailto:u-abc@example.com>
            List-Unsubscribe-Post: List-Unsubscribe=One-Click
            Feedback-ID: 42:orders:shop

            --b1
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: quoted-printable

            Thank you for your order =E2=80=94 it ships today.

            --b1
            Content-Type: text/html; charset=utf-8
            Content-Transfer-Encoding: base64

            PGh0bWw+PGJvZHk+PHA+VGhhbmsgeW91IGZvciB5b3VyIG9yZGVyLjwvcD48aW1nIHNyYz0iaHR0
            cHM6Ly90LmV4YW1wbGUuY29tL28vYWJjLnBuZyI+PC9ib2R5PjwvaHRtbD4=

            --b1--
            """ + "\n")),
        ("repeated fields", crlf("""
            Received: from a by b; Tue, 02 Jun 2026 10:00:00 +0000
            Received: from c by d; Tue, 02 Jun 2026 09:59:00 +0000
            From: a@example.com
            To: b@example.net
            To: c@example.net
            Cc: d@example.net
            Subject: Two To fields

            x
            """ + "\n")),
    ]

    static func signer(_ key: DKIMPrivateKey, selector: String = "tern", canonicalization: (DKIMCanonicalization, DKIMCanonicalization) = (.relaxed, .relaxed)) throws -> DKIMSigner {
        try DKIMSigner(domain: "example.com", selector: selector, key: key, canonicalization: canonicalization)
    }

    static func record(_ key: DKIMPrivateKey, selector: String = "tern") -> [String: String] {
        [DKIMKeyRecord.name(selector: selector, domain: "example.com") + ".": key.dnsRecordValue]
    }

    static func signed(_ message: [UInt8], _ signer: DKIMSigner) throws -> [UInt8] {
        Array(try signer.sign(message: message, timestamp: Date()).utf8) + message
    }

    static func replacing(_ old: String, with new: String, in message: [UInt8]) throws -> [UInt8] {
        let range = try #require(message.firstRange(of: Array(old.utf8)), "\(old) not in message")
        var copy = message
        copy.replaceSubrange(range, with: Array(new.utf8))
        return copy
    }

    static func check(_ cases: [Case]) throws {
        let results = try verify(cases)
        for (c, result) in zip(cases, results) {
            #expect(result.ok == c.expectPass, "\(c.name): dkimpy says \(result.ok ? "pass" : "fail") \(result.error)")
            if c.expectPass {
                // The record was looked up under the name d= and s= give, and only there.
                #expect(!result.queried.isEmpty && result.queried.allSatisfy { c.records[$0] != nil }, "\(c.name): queried \(result.queried)")
            }
        }
    }

    @Test(arguments: ["rsa", "ed25519"])
    func signedMessagesVerify(keyType: String) throws {
        try Self.requireDkimpy()
        let key = keyType == "rsa" ? TestKeys.rsa : TestKeys.ed25519
        var cases: [Case] = []
        for (name, message) in Self.messages {
            for canonicalization in [(DKIMCanonicalization.relaxed, DKIMCanonicalization.relaxed), (.simple, .simple), (.relaxed, .simple)] {
                let signed = try Self.signed(message, try Self.signer(key, canonicalization: canonicalization))
                cases.append(Case(
                    name: "\(keyType) \(canonicalization.0)/\(canonicalization.1) \(name)", message: base64(signed),
                    records: Self.record(key), index: 0, expectPass: true))
            }
        }
        // A record under another name is not found: the signature names d= and s= correctly.
        let signed = try Self.signed(Self.messages[0].1, try Self.signer(key))
        cases.append(Case(name: "\(keyType) wrong selector record", message: base64(signed), records: Self.record(key, selector: "other"), index: 0, expectPass: false))
        // Another key's record does not verify it.
        let other = keyType == "rsa" ? try DKIMPrivateKey.generateRSA() : DKIMPrivateKey.generateEd25519()
        cases.append(Case(name: "\(keyType) another key", message: base64(signed), records: Self.record(other), index: 0, expectPass: false))
        try Self.check(cases)
    }

    @Test(arguments: ["rsa", "ed25519"])
    func tamperingIsDetected(keyType: String) throws {
        try Self.requireDkimpy()
        let key = keyType == "rsa" ? TestKeys.rsa : TestKeys.ed25519
        let record = Self.record(key)
        let multipart = try Self.signed(Self.messages[7].1, try Self.signer(key))
        let plain = try Self.signed(Self.messages[0].1, try Self.signer(key))
        let simple = try Self.signed(Self.messages[0].1, try Self.signer(key, canonicalization: (.simple, .simple)))
        let variants: [(String, [UInt8], Bool)] = [
            ("untouched", multipart, true),
            // Each of these changes what was signed.
            ("one body byte", try Self.replacing("ships today", with: "ships todax", in: multipart), false),
            ("a body line added", multipart + crlf("extra\n"), false),
            ("signed header value", try Self.replacing("Subject: Your order", with: "Subject: Your ordeR", in: multipart), false),
            ("Feedback-ID value", try Self.replacing("42:orders", with: "43:orders", in: multipart), false),
            ("List-Unsubscribe value", try Self.replacing("u/abc>", with: "u/abd>", in: multipart), false),
            // Over-signing: another instance of an oversigned field, above or below, breaks it.
            // (dkimpy refuses a second From whatever the signature says; Subject and
            // List-Unsubscribe are the ones that show the over-signing.)
            ("second From above", crlf("From: Mallory <m@evil.example>\n") + multipart, false),
            ("second Subject above", crlf("Subject: Urgent\n") + multipart, false),
            ("second From below", try Self.replacing("To: customer", with: "From: Mallory <m@evil.example>\r\nTo: customer", in: multipart), false),
            ("List-Unsubscribe added where absent", try Self.replacing("Subject: Plain", with: "Subject: Plain\r\nList-Unsubscribe: <https://evil.example/>", in: plain), false),
            ("Date replaced by one above", try crlf("Date: Wed, 03 Jun 2026 10:00:00 +0000\n") + Self.replacing("Date: Tue, 02 Jun 2026 10:00:00 +0000\r\n", with: "", in: plain), false),
            // Fields not signed may be added, and relaxed forgives refolding and whitespace.
            ("Received added above", crlf("Received: from mx by mx2; Tue, 02 Jun 2026 10:00:01 +0000\n") + multipart, true),
            ("unsigned X- field added", try Self.replacing("To: customer", with: "X-Spam-Score: 0\r\nTo: customer", in: multipart), true),
            ("Subject refolded", try Self.replacing("Subject: Your order", with: "Subject:   Your\r\n\t  order  ", in: multipart), true),
            ("trailing whitespace and blank lines in body", try Self.replacing("ships today.", with: "ships today.   ", in: multipart) + crlf("\n\n"), true),
            // Simple canonicalisation forgives nothing in the header.
            ("simple: untouched", simple, true),
            ("simple: Subject refolded", try Self.replacing("Subject: Plain", with: "Subject:  Plain", in: simple), false),
        ]
        try Self.check(variants.map { Case(name: "\(keyType) \($0.0)", message: base64($0.1), records: record, index: 0, expectPass: $0.2) })
    }

    /// Dual signing: two signer calls on the same unsigned message; both fields verify in
    /// either order.
    @Test func dualSignatureBothOrders() throws {
        try Self.requireDkimpy()
        let message = Self.messages[7].1
        let rsa = try Self.signer(TestKeys.rsa, selector: "rsa")
        let ed = try Self.signer(TestKeys.ed25519, selector: "ed")
        let now = Date()
        let rsaField = Array(try rsa.sign(message: message, timestamp: now).utf8)
        let edField = Array(try ed.sign(message: message, timestamp: now).utf8)
        let records = Self.record(TestKeys.rsa, selector: "rsa").merging(Self.record(TestKeys.ed25519, selector: "ed")) { a, _ in a }
        var cases: [Case] = []
        for (order, signed) in [("rsa on top", rsaField + edField + message), ("ed25519 on top", edField + rsaField + message)] {
            for index in 0..<2 {
                cases.append(Case(name: "\(order), signature \(index)", message: base64(signed), records: records, index: index, expectPass: true))
            }
            let tampered = try Self.replacing("ships today", with: "ships later", in: signed)
            for index in 0..<2 {
                cases.append(Case(name: "\(order), tampered, signature \(index)", message: base64(tampered), records: records, index: index, expectPass: false))
            }
        }
        try Self.check(cases)
    }

    /// The RFC 8463 example verifies with the same harness, so the harness itself is sound.
    @Test func rfc8463ExampleVerifies() throws {
        try Self.requireDkimpy()
        let record = ["brisbane._domainkey.football.example.com.": "v=DKIM1; k=ed25519; p=\(RFC8463.ed25519Public)"]
        let tampered = try Self.replacing("Joe.", with: "Jim.", in: RFC8463.signedMessage)
        try Self.check([
            Case(name: "RFC 8463 A.3", message: base64(RFC8463.signedMessage), records: record, index: 0, expectPass: true),
            Case(name: "RFC 8463 A.3 tampered", message: base64(tampered), records: record, index: 0, expectPass: false),
        ])
    }
}
