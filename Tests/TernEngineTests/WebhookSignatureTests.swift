import Foundation
import Testing
@testable import TernEngine

@Suite struct WebhookSignatureTests {
    static let body = Array(#"{"id":"0000000000000001"}"#.utf8)
    static let at = Date(timeIntervalSince1970: 1_700_000_000.9)

    /// Vectors from Python, independent of Crypto:
    ///
    ///     import hmac, hashlib
    ///     hmac.new(b"whsec_test", b'1700000000.{"id":"0000000000000001"}', hashlib.sha256).hexdigest()
    ///     hmac.new(bytes(range(32)), b"1700000123.", hashlib.sha256).hexdigest()
    @Test(arguments: [
        (Array("whsec_test".utf8), WebhookSignatureTests.body, WebhookSignatureTests.at,
         "t=1700000000,v1=e2910704bcf8c16e1e0e55557de88cab12a425ac8f5c24c210294caed4f38fba"),
        ((0..<32).map { UInt8($0) }, [], Date(timeIntervalSince1970: 1_700_000_123),
         "t=1700000123,v1=1d3be40c6127e7ae25f8e2c99f4f99658428979e62cc245e0659d45660570118"),
    ] as [([UInt8], [UInt8], Date, String)])
    func signsLikePythonsHMAC(secret: [UInt8], body: [UInt8], at: Date, expected: String) throws {
        let signature = WebhookSignature(secret: secret)
        #expect(signature.header(for: body, at: at) == expected)
        try signature.verify(expected, body: body, now: at)
    }

    @Test func verifyAcceptsAnyMatchingV1AndOtherSchemes() throws {
        let signature = WebhookSignature(secret: Array("whsec_test".utf8))
        let header = signature.header(for: Self.body, at: Self.at)
        let code = String(header.split(separator: "v1=")[1])
        try signature.verify("t=1700000000, v0=abc, v1=\(String(repeating: "0", count: 64)), v1=\(code.uppercased())", body: Self.body, now: Self.at)
    }

    @Test(arguments: [
        ("t=1700000000,v1=e2910704bcf8c16e1e0e55557de88cab12a425ac8f5c24c210294caed4f38fbb", 0.0, WebhookSignature.VerificationError.Code.mismatch),
        ("t=1700000001,v1=e2910704bcf8c16e1e0e55557de88cab12a425ac8f5c24c210294caed4f38fba", 0.0, .mismatch),
        ("t=1700000000,v1=e2910704bcf8c16e1e0e55557de88cab12a425ac8f5c24c210294caed4f38fba", 301.0, .outsideTolerance),
        ("t=1700000000,v1=e2910704bcf8c16e1e0e55557de88cab12a425ac8f5c24c210294caed4f38fba", -301.0, .outsideTolerance),
        ("v1=e2910704bcf8c16e1e0e55557de88cab12a425ac8f5c24c210294caed4f38fba", 0.0, .malformed),
        ("t=1700000000", 0.0, .malformed),
        ("t=1700000000,v1=xyz", 0.0, .malformed),
        ("", 0.0, .malformed),
    ] as [(String, Double, WebhookSignature.VerificationError.Code)])
    func verifyRejects(header: String, clockOffset: Double, code: WebhookSignature.VerificationError.Code) {
        let signature = WebhookSignature(secret: Array("whsec_test".utf8))
        let error = #expect(throws: WebhookSignature.VerificationError.self) {
            try signature.verify(header, body: Self.body, now: Self.at.addingTimeInterval(clockOffset))
        }
        #expect(error?.code == code)
    }

    @Test func verifyRejectsAnotherBodyOrSecret() {
        let header = WebhookSignature(secret: Array("whsec_test".utf8)).header(for: Self.body, at: Self.at)
        #expect(throws: WebhookSignature.VerificationError.self) {
            try WebhookSignature(secret: Array("whsec_test".utf8)).verify(header, body: Self.body + [0x20], now: Self.at)
        }
        #expect(throws: WebhookSignature.VerificationError.self) {
            try WebhookSignature(secret: Array("whsec_other".utf8)).verify(header, body: Self.body, now: Self.at)
        }
    }
}
