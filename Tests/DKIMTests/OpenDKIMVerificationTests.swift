import Foundation
import Testing

@testable import DKIM

/// A second independent verifier: OpenDKIM's `opendkim -t` test mode, with the key records in a
/// `TestPublicKeys` file instead of DNS. It runs where the Debian package `opendkim` is installed,
/// as `scripts/test` (and so CI) installs it; elsewhere dkimpy's checks stand alone. With
/// `CI` set it runs anyway, so that a missing `opendkim` fails as the other missing peers do.
@Suite(.enabled(if: OpenDKIM.shouldRun, "opendkim not installed (optional: apt-get install opendkim)"))
struct OpenDKIMVerificationTests {

    /// Verifies each message and returns whether OpenDKIM said "succeeded" for it.
    static func verify(_ messages: [[UInt8]], records: [String: String]) throws -> [Bool] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tern-opendkim-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let keys = directory.appendingPathComponent("keys")
        try Data(records.map { "\($0.key) \($0.value)\n" }.joined().utf8).write(to: keys)
        let conf = directory.appendingPathComponent("opendkim.conf")
        try Data("TestPublicKeys \(keys.path)\nMode v\nSyslog no\n".utf8).write(to: conf)
        var files: [String] = []
        for (index, message) in messages.enumerated() {
            let file = directory.appendingPathComponent("m\(index).eml")
            try Data(message).write(to: file)
            files.append(file.path)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(OpenDKIM.path, "opendkim is missing (scripts/test installs it: apt-get install opendkim)"))
        process.arguments = ["-x", conf.path, "-t", files.joined(separator: ",")]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let lines = output.split(separator: "\n")
        return try files.map { file in
            let line = try #require(lines.first { $0.contains("\(file): ") }, "no verdict for \(file) in: \(output)")
            return line.contains(") succeeded")
        }
    }

    @Test(arguments: ["rsa", "ed25519"])
    func signedMessagesVerifyAndTamperedFail(keyType: String) throws {
        let key = keyType == "rsa" ? TestKeys.rsa : TestKeys.ed25519
        let records = [DKIMKeyRecord.name(selector: "tern", domain: "example.com"): key.dnsRecordValue]
        var messages: [[UInt8]] = []
        var names: [String] = []
        var expected: [Bool] = []
        for (name, message) in DkimpyVerificationTests.messages {
            for canonicalization in [(DKIMCanonicalization.relaxed, DKIMCanonicalization.relaxed), (.simple, .simple)] {
                let signer = try DkimpyVerificationTests.signer(key, canonicalization: canonicalization)
                var signed = try DkimpyVerificationTests.signed(message, signer)
                // Verified as SMTP delivers it: DATA always ends the body with CRLF. (Handed a
                // body without one, OpenDKIM 2.11 does not add the CRLF that RFC 6376 §3.4.4
                // adds for relaxed; dkimpy and Tern do.)
                if signed.last != 10 { signed += [13, 10] }
                messages.append(signed)
                names.append("\(name) \(canonicalization)")
                expected.append(true)
                // The last byte of the body before its final CRLF (or of the header), changed.
                var tampered = signed
                if let i = tampered.lastIndex(where: { $0 != 13 && $0 != 10 && $0 != 32 && $0 != 9 }) {
                    tampered[i] ^= 0x01
                    messages.append(tampered)
                    names.append("\(name) \(canonicalization) tampered")
                    expected.append(false)
                }
            }
        }
        let subjectAbove = crlf("Subject: Urgent\n") + (try DkimpyVerificationTests.signed(DkimpyVerificationTests.messages[0].1, try DkimpyVerificationTests.signer(key)))
        messages.append(subjectAbove)
        names.append("second Subject above")
        expected.append(false)

        let verdicts = try Self.verify(messages, records: records)
        for (name, (verdict, wanted)) in zip(names, zip(verdicts, expected)) {
            #expect(verdict == wanted, "\(keyType) \(name): OpenDKIM says \(verdict ? "pass" : "fail")")
        }
    }
}

enum OpenDKIM {
    static let path: String? = ["/usr/sbin/opendkim", "/usr/bin/opendkim"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static var shouldRun: Bool { path != nil || ProcessInfo.processInfo.environment["CI"].map { !$0.isEmpty } ?? false }
}
