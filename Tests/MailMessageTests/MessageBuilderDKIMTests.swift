import DKIM
import Foundation
import Testing

@testable import MailMessage

/// A built message signed with Tern's ``DKIMSigner`` verifies with Python's dkimpy, an
/// independent verifier, given the key record instead of DNS (RFC 6376 §6.1).
@Suite(.enabled(if: Python.path != nil || Python.isCI, "python3 not found (required when CI is set)"))
struct MessageBuilderDKIMTests {
    static let script = #"""
    import json, sys
    import dkim
    record = sys.argv[2].encode()
    def dnsfunc(name, timeout=5):
        return record if name.decode().rstrip(".") == sys.argv[3] else None
    with open(sys.argv[1], "rb") as f:
        message = f.read()
    tampered = message.replace(b"\r\nSubject: ", b"\r\nSubject: Re: ", 1)
    print(json.dumps({"ok": bool(dkim.verify(message, dnsfunc=dnsfunc)),
                      "tamperedOK": bool(dkim.verify(tampered, dnsfunc=dnsfunc))}))
    """#

    struct Result: Decodable {
        var ok: Bool
        var tamperedOK: Bool
    }

    @Test(arguments: [
        BuilderCases.cases.first { $0.name == "text, html, attachments and an inline image" },
        BuilderCases.cases.first { $0.name == "non-ASCII subject, display names and file names" },
    ].compactMap { $0 })
    func dkimpyVerifiesABuiltAndSignedMessage(_ c: BuilderCases.Case) throws {
        let python = try #require(Python.path, "python3 is required (CI is set)")
        let built = try BuilderCases.build(c.message)
        let key = try DKIMPrivateKey.generateRSA(bits: 2048)
        let signer = try DKIMSigner(domain: built.fromDomain, selector: "tern", key: key)
        let signed = Array(try signer.sign(message: built.bytes).utf8) + built.bytes

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tern-built-dkim-\(UUID().uuidString).eml")
        try Data(signed).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", Self.script, file.path, key.dnsRecordValue, DKIMKeyRecord.name(selector: "tern", domain: built.fromDomain)]
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "dkimpy is required (pip install dkimpy): \(String(decoding: errors, as: UTF8.self))")
        let result = try JSONDecoder().decode(Result.self, from: output)
        #expect(result.ok)
        #expect(!result.tamperedOK, "a changed Subject must fail")
    }
}
