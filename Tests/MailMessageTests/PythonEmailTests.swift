import Foundation
import Testing

@testable import MailMessage

/// Reads every rewritten corpus message with Python's `email` package, as an independent MIME
/// reader: it must find no new defect, and the HTML it decodes must hold the pixel and the links.
@Suite(.enabled(if: Python.path != nil || Python.isCI, "python3 not found (required when CI is set)"))
struct PythonEmailTests {
    /// Walks the message as Tern does (not into message/* nor multipart/signed or encrypted,
    /// skipping attachments) and prints the defects and the decoded inline HTML parts as JSON.
    static let script = #"""
    import email, email.policy, json, sys
    with open(sys.argv[1], "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    defects = [type(d).__name__ for d in msg.defects]
    html = []
    texts = 0
    def walk(part, top):
        global texts
        if not top:
            defects.extend(type(d).__name__ for d in part.defects)
        ctype = part.get_content_type()
        if part.is_multipart():
            if ctype in ("multipart/signed", "multipart/encrypted") or part.get_content_maintype() == "message":
                return
            for sub in part.get_payload():
                walk(sub, False)
            return
        if part.get_content_maintype() == "text":
            content = part.get_content()  # decodes transfer encoding and charset; raises if it cannot
            texts += 1
            if ctype == "text/html" and part.get_content_disposition() != "attachment":
                html.append(content)
    walk(msg, True)
    print(json.dumps({"defects": defects, "html": html, "texts": texts}))
    """#

    struct Report: Decodable {
        var defects: [String]
        var html: [String]
        var texts: Int
    }

    @Test(arguments: Corpus.expectations)
    func pythonReadsRewrittenMessage(expectation: Corpus.Expectation) throws {
        let python = try #require(Python.path, "python3 is required (CI is set)")
        let original = try Corpus.bytes(expectation.file)
        let result = try TrackingRewriter.rewrite(original, options: Corpus.options)
        let before = try Self.read(original, python: python)
        let after = try Self.read(result.bytes, python: python)

        // No defect that was not there before.
        var remaining = before.defects
        for defect in after.defects {
            if let i = remaining.firstIndex(of: defect) {
                remaining.remove(at: i)
            } else {
                Issue.record("python reports a new defect \(defect) in \(expectation.file)")
            }
        }
        #expect(after.texts == before.texts)
        #expect(after.html.count == before.html.count)
        #expect(after.html.count == expectation.pixels)
        for html in after.html {
            #expect(html.contains("src=\"\(Corpus.pixelURL)\""), "pixel in an HTML part of \(expectation.file)")
        }
        let allHTML = after.html.joined()
        for index in expectation.links.indices {
            let tracked = String(decoding: HTMLText.escape(Corpus.trackedURL(index)), as: UTF8.self)
            #expect(allHTML.contains("=\"\(tracked)\""), "link \(index) of \(expectation.file)") // href= or HREF=
        }
    }

    static func read(_ bytes: [UInt8], python: String) throws -> Report {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tern-mime-\(UUID().uuidString).eml")
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
            throw PythonError(hint: "python3 exited \(process.terminationStatus): \(String(decoding: errors, as: UTF8.self))")
        }
        return try JSONDecoder().decode(Report.self, from: output)
    }

    struct PythonError: Error, CustomStringConvertible {
        var hint: String
        var description: String { hint }
    }
}

/// Where python3 is, if anywhere on PATH.
enum Python {
    static let path: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/usr/local/bin"
        return path.split(separator: ":").map { "\($0)/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"].map { !$0.isEmpty } ?? false }
}
