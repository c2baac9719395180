import Foundation
import Testing

@testable import MailMessage

/// Reads every built message with Python's `email` package (policy=default), an independent
/// MIME reader: no defects anywhere, and headers, structure, texts and attachments exactly as asked.
@Suite(.enabled(if: Python.path != nil || Python.isCI, "python3 not found (required when CI is set)"))
struct MessageBuilderPythonTests {
    /// Prints what Python reads, as JSON: defects (message, parts, header fields), the address
    /// fields as (display name, addr-spec) pairs, and each part depth-first.
    static let script = #"""
    import base64, email, email.policy, json, sys
    with open(sys.argv[1], "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    defects = []
    parts = []
    for part in msg.walk():
        defects.extend(type(d).__name__ for d in part.defects)
        for name, value in part.items():
            defects.extend("%s: %s" % (name, d) for d in getattr(value, "defects", ()))
        entry = {"type": part.get_content_type(), "filename": part.get_filename(), "cid": part.get("content-id"),
                 "disposition": part.get_content_disposition(), "text": None, "data": None}
        if part.is_multipart():
            pass
        elif part.get_filename() is None and part.get_content_maintype() == "text":
            entry["text"] = part.get_content()  # transfer encoding and charset undone; raises if it cannot
        else:
            entry["data"] = base64.b64encode(part.get_payload(decode=True)).decode()
        parts.append(entry)
    def addresses(name):
        header = msg[name]
        return None if header is None else [[a.display_name, a.addr_spec] for a in header.addresses]
    print(json.dumps({
        "defects": defects, "parts": parts, "subject": msg["subject"],
        "from": addresses("from"), "to": addresses("to"), "cc": addresses("cc"), "replyTo": addresses("reply-to"),
        "bcc": msg["bcc"], "messageID": msg["message-id"], "date": msg["date"].datetime.isoformat(),
        "mimeVersion": msg["mime-version"], "headers": {k: str(v) for k, v in msg.items()},
    }))
    """#

    struct Report: Decodable {
        struct Part: Decodable {
            var type: String
            var filename: String?
            var cid: String?
            var disposition: String?
            var text: String?
            var data: String?
        }

        var defects: [String]
        var parts: [Part]
        var subject: String?
        var from: [[String]]?
        var to: [[String]]?
        var cc: [[String]]?
        var replyTo: [[String]]?
        var bcc: String?
        var messageID: String?
        var date: String
        var mimeVersion: String?
        var headers: [String: String]
    }

    static func pairs(_ mailboxes: [Mailbox]) -> [[String]]? {
        mailboxes.isEmpty ? nil : mailboxes.map { [$0.name ?? "", $0.address] }
    }

    @Test(arguments: BuilderCases.cases)
    func pythonReadsWhatWasAsked(_ c: BuilderCases.Case) throws {
        let python = try #require(Python.path, "python3 is required (CI is set)")
        let built = try BuilderCases.build(c.message)
        let report = try Self.read(built.bytes, python: python)
        let message = c.message

        #expect(report.defects == [])
        #expect(report.subject == message.subject)
        #expect(report.from == Self.pairs([message.from]))
        #expect(report.to == Self.pairs(message.to))
        #expect(report.cc == Self.pairs(message.cc))
        #expect(report.replyTo == Self.pairs(message.replyTo))
        #expect(report.bcc == nil)
        #expect(report.messageID == "<\(built.messageID)>")
        #expect(report.date == "2025-07-01T09:05:00+00:00")
        #expect(report.mimeVersion == "1.0")
        for (name, value) in message.headers {
            #expect(report.headers[name] == value, "header \(name)")
        }
        #expect(report.parts.map(\.type) == c.structure)

        let leaves = report.parts.filter { !$0.type.hasPrefix("multipart/") }
        // Python reads a binary file with universal newlines: line breaks come back as LF from a
        // quoted-printable body and as CRLF from a base64 one. Compare with LF throughout.
        func lf(_ text: String) -> String {
            String(decoding: MessageBuilderTests.canonical(text), as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
        }
        var expected: [(text: String?, attachment: OutgoingAttachment?)] = []
        if let text = message.text { expected.append((lf(text), nil)) }
        if let html = message.html { expected.append((lf(html), nil)) }
        let inline = message.html == nil ? [] : message.attachments.filter { $0.contentID != nil }
        let attached = message.html == nil ? message.attachments : message.attachments.filter { $0.contentID == nil }
        expected += (inline + attached).map { (nil, $0) }
        try #require(leaves.count == expected.count)
        for (part, want) in zip(leaves, expected) {
            if let text = want.text {
                #expect(part.text?.replacingOccurrences(of: "\r\n", with: "\n") == text, "\(part.type) text")
                #expect(part.filename == nil)
                continue
            }
            guard let attachment = want.attachment else { continue }
            let bytes = part.data.flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) }
            #expect(bytes == attachment.content, "\(attachment.filename) content")
            #expect(part.filename == attachment.filename)
            let isInline = attachment.contentID != nil && message.html != nil
            #expect(part.disposition == (isInline ? "inline" : "attachment"))
            #expect(part.cid == attachment.contentID.map { "<\(MessageBuilder.bareContentID($0))>" })
        }
    }

    static func read(_ bytes: [UInt8], python: String) throws -> Report {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tern-built-\(UUID().uuidString).eml")
        try Data(bytes).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script, file.path]
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PythonEmailTests.PythonError(hint: "python3 exited \(process.terminationStatus): \(String(decoding: errors, as: UTF8.self))")
        }
        return try JSONDecoder().decode(Report.self, from: output)
    }
}
