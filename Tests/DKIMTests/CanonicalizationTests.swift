import Testing

@testable import DKIM

/// Header and body canonicalisation against RFC 6376 §3.4.5 and tables of edge cases.
struct CanonicalizationTests {
    /// The canonical form of every field of a header section, in order.
    static func canonicalHeader(_ text: [UInt8], _ canonicalization: DKIMCanonicalization) throws -> [UInt8] {
        let section = try HeaderSection(text)
        var out: [UInt8] = []
        text.withUnsafeBufferPointer { buffer in
            for field in section.fields {
                HeaderCanonicalization.append(
                    UnsafeBufferPointer(rebasing: buffer[field.range]), colon: field.colon,
                    using: canonicalization, terminate: true, to: &out)
            }
        }
        return out
    }

    // RFC 6376 §3.4.5: the example message, written with its <SP> and <HTAB> spelled out.
    static let exampleHeader: [UInt8] = Array("A: X\r\nB : Y\t\r\n\tZ  \r\n".utf8)
    static let exampleBody: [UInt8] = Array(" C \r\nD \t E\r\n\r\n\r\n".utf8)

    @Test func rfc6376ExampleRelaxedHeader() throws {
        #expect(try Self.canonicalHeader(Self.exampleHeader, .relaxed) == Array("a:X\r\nb:Y Z\r\n".utf8))
    }

    @Test func rfc6376ExampleSimpleHeader() throws {
        #expect(try Self.canonicalHeader(Self.exampleHeader, .simple) == Self.exampleHeader)
    }

    @Test func rfc6376ExampleRelaxedBody() {
        #expect(streamedCanonicalBody([Self.exampleBody], .relaxed) == Array(" C\r\nD E\r\n".utf8))
    }

    @Test func rfc6376ExampleSimpleBody() {
        #expect(streamedCanonicalBody([Self.exampleBody], .simple) == Array(" C \r\nD \t E\r\n".utf8))
    }

    struct HeaderCase: Sendable, CustomTestStringConvertible {
        var field: String
        var relaxed: String
        var testDescription: String { field.debugDescription }
    }

    @Test(arguments: [
        HeaderCase(field: "Subject: Hello\r\n", relaxed: "subject:Hello\r\n"),
        HeaderCase(field: "SUBJECT:   hello    world   \r\n", relaxed: "subject:hello world\r\n"),
        HeaderCase(field: "Subject\t :\thi\r\n", relaxed: "subject:hi\r\n"),
        HeaderCase(field: "X-Empty:\r\n", relaxed: "x-empty:\r\n"),
        HeaderCase(field: "X-Blank:   \r\n", relaxed: "x-blank:\r\n"),
        HeaderCase(field: "To: a@example.com,\r\n\tb@example.com,\r\n  c@example.com\r\n", relaxed: "to:a@example.com, b@example.com, c@example.com\r\n"),
        HeaderCase(field: "X-Fold:\r\n value\r\n", relaxed: "x-fold:value\r\n"),
        HeaderCase(field: "Subject: Grüße aus München\r\n", relaxed: "subject:Grüße aus München\r\n"),
        HeaderCase(field: "X-Case: MiXeD CaSe VaLuE\r\n", relaxed: "x-case:MiXeD CaSe VaLuE\r\n"),
        HeaderCase(field: "X-Colons: a:b :: c\r\n", relaxed: "x-colons:a:b :: c\r\n"),
        HeaderCase(field: "X-No-CRLF: last", relaxed: "x-no-crlf:last\r\n"),
    ])
    func relaxedHeaderField(_ c: HeaderCase) throws {
        #expect(try Self.canonicalHeader(Array(c.field.utf8), .relaxed) == Array(c.relaxed.utf8))
    }

    @Test func simpleHeaderKeepsEverything() throws {
        let header = Array("SUBJECT:   hello  \r\n\t world\r\nX-Empty:\r\n".utf8)
        #expect(try Self.canonicalHeader(header, .simple) == header)
        // A field that ends the buffer without CRLF gets one, as it will have on the wire.
        #expect(try Self.canonicalHeader(Array("X: y".utf8), .simple) == Array("X: y\r\n".utf8))
    }

    struct BodyCase: Sendable, CustomTestStringConvertible {
        var body: String
        var relaxed: String
        var simple: String
        var testDescription: String { body.debugDescription }
    }

    @Test(arguments: [
        // An empty body: nothing for relaxed, one CRLF for simple (RFC 6376 §3.4.3, §3.4.4).
        BodyCase(body: "", relaxed: "", simple: "\r\n"),
        BodyCase(body: "\r\n", relaxed: "", simple: "\r\n"),
        BodyCase(body: "\r\n\r\n\r\n", relaxed: "", simple: "\r\n"),
        BodyCase(body: " \t \r\n\t\r\n", relaxed: "", simple: " \t \r\n\t\r\n"),
        BodyCase(body: "abc", relaxed: "abc\r\n", simple: "abc\r\n"),
        BodyCase(body: "abc  ", relaxed: "abc\r\n", simple: "abc  \r\n"),
        BodyCase(body: "abc\r\n\r\n\r\n", relaxed: "abc\r\n", simple: "abc\r\n"),
        BodyCase(body: "\r\n\r\nabc\r\n", relaxed: "\r\n\r\nabc\r\n", simple: "\r\n\r\nabc\r\n"),
        BodyCase(body: "a\r\n \r\nb\r\n", relaxed: "a\r\n\r\nb\r\n", simple: "a\r\n \r\nb\r\n"),
        BodyCase(body: "a  b\t\tc \t d\r\n", relaxed: "a b c d\r\n", simple: "a  b\t\tc \t d\r\n"),
        BodyCase(body: "  leading\r\n", relaxed: " leading\r\n", simple: "  leading\r\n"),
        // A bare CR or LF is not a line end: it is content, and so is WSP before it.
        BodyCase(body: "a \rb\r\n", relaxed: "a \rb\r\n", simple: "a \rb\r\n"),
        BodyCase(body: "a \nb\r\n", relaxed: "a \nb\r\n", simple: "a \nb\r\n"),
        BodyCase(body: "a\r", relaxed: "a\r\r\n", simple: "a\r\r\n"),
        BodyCase(body: "\r\r\n", relaxed: "\r\r\n", simple: "\r\r\n"),
        BodyCase(body: "x \r\n\r\n \r\n", relaxed: "x\r\n", simple: "x \r\n\r\n \r\n"),
        BodyCase(body: "Grüße  \r\n\r\n", relaxed: "Grüße\r\n", simple: "Grüße  \r\n"),
    ])
    func body(_ c: BodyCase) {
        let body = Array(c.body.utf8)
        #expect(streamedCanonicalBody([body], .relaxed) == Array(c.relaxed.utf8), "relaxed")
        #expect(streamedCanonicalBody([body], .simple) == Array(c.simple.utf8), "simple")
        // The hand-written table and the line-by-line reference agree.
        #expect(referenceCanonicalBody(body, .relaxed) == Array(c.relaxed.utf8), "reference relaxed")
        #expect(referenceCanonicalBody(body, .simple) == Array(c.simple.utf8), "reference simple")
    }

    @Test func emptyBodyHashes() {
        // SHA-256 of nothing and of CRLF.
        #expect(base64(DKIMBodyHasher.hash([], canonicalization: .relaxed)) == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
        #expect(base64(DKIMBodyHasher.hash([], canonicalization: .simple)) == "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=")
        #expect(base64(DKIMBodyHasher.hash(Array("\r\n\r\n".utf8), canonicalization: .simple)) == "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=")
    }

    @Test func canonicalLengthCountsWhatIsHashed() {
        var hasher = DKIMBodyHasher()
        hasher.update(Array("a  b \r\n\r\n".utf8))
        #expect(hasher.canonicalLength == 5)  // "a b" + CRLF; the empty line is still pending
    }
}
