import Testing

@testable import MailReports

/// Broken input never traps the parser and never breaks its invariants: every fixture cut short,
/// with bytes flipped, and with report syntax spliced in at random (a fixed seed); random bytes;
/// and inputs built to be slow or deep.
struct RobustnessTests {
    /// SplitMix64 (Steele, Lea, Flood 2014): small, seeded, the same on every machine.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let fragments: [[UInt8]] = [
        "\r\n", "\n", "\r", "\r\n\r\n", "--", ":", ";", "<", ">", "@", "(", ")", "\\x{", "+2B", "=\r\n", "=",
        "Final-Recipient: rfc822; x@example.net\r\n", "Action: failed\r\n", "Status: 5.1.1\r\n", "Status: 9.9.9.9\r\n",
        "Diagnostic-Code: smtp; 550 5.1.1\r\n", "Original-Recipient: utf-8; \\x{FFFFFFFF}@x\r\n",
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n",
        "Content-Type: message/delivery-status\r\n\r\n", "Content-Type: message/feedback-report\r\n\r\n",
        "Content-Transfer-Encoding: base64\r\n", "Content-Transfer-Encoding: quoted-printable\r\n",
        "Auto-Submitted: auto-replied\r\n", "<a@b.example>:\r\n", "RCPT TO:<a@b.example>\r\n", "550 ", "#5.1.1",
        "This is the qmail-send program", "The following address(es) failed:", "&#", "<br>", "\0", "\u{FF}",
    ].map { Array($0.utf8) }

    /// What holds for any report.
    static func checkInvariants(_ report: DeliveryReport, limits: ReportLimits = ReportLimits()) {
        #expect(report.recipients.count <= limits.maxRecipients)
        switch report.kind {
        case .bounce: #expect(report.recipients.contains { $0.action == .failed })
        case .delay: #expect(report.recipients.contains { $0.action == .delayed } && !report.recipients.contains { $0.action == .failed })
        case .complaint: #expect(report.feedback != nil && report.recipients.allSatisfy { $0.action == .complained })
        case .autoReply, .unknown: #expect(report.recipients.isEmpty)
        case .delivered: #expect(!report.recipients.isEmpty && report.recipients.allSatisfy { [.delivered, .relayed, .expanded].contains($0.action) })
        }
        for recipient in report.recipients {
            #expect(!recipient.address.isEmpty)
            #expect(recipient.suppress == false || recipient.bounceClass == .hard || recipient.action == .complained)
            if recipient.action == .delayed { #expect(recipient.bounceClass == .soft && !recipient.suppress) }
            if let status = recipient.status { #expect(EnhancedStatusCode(parsing: status)?.description == status) }
        }
    }

    @Test(arguments: Fixtures.expectations.map(\.file))
    func mutatedFixturesDoNotTrap(file: String) throws {
        let original = try Fixtures.bytes(file)
        var random = Generator(state: UInt64(original.count) &* 31 &+ UInt64(file.utf8.count))
        var inputs: [[UInt8]] = []
        for cut in stride(from: 0, to: original.count, by: max(1, original.count / 50)) {
            inputs.append(Array(original[..<cut]))
            inputs.append(Array(original[cut...]))
        }
        for _ in 0..<60 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                let at = Int.random(in: 0...bytes.count, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0 where at < bytes.count: bytes[at] = UInt8.random(in: 0...255, using: &random)
                case 1: bytes.insert(contentsOf: Self.fragments.randomElement(using: &random) ?? [], at: at)
                case 2: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...60, using: &random)))
                default:
                    // Turn line ends into bare CR or LF, or back.
                    if let lf = bytes[at...].firstIndex(of: 10), lf > 0 {
                        if bytes[lf - 1] == 13 { bytes.remove(at: lf - 1) } else { bytes[lf] = 13 }
                    }
                }
            }
            inputs.append(bytes)
        }
        for input in inputs { Self.checkInvariants(ReportParser.parse(input)) }
    }

    @Test func randomBytesDoNotTrap() {
        var random = Generator(state: 0x7E72_2026)
        for round in 0..<300 {
            let count = Int.random(in: 0...(round < 200 ? 400 : 6_000), using: &random)
            var bytes: [UInt8] = []
            bytes.reserveCapacity(count)
            // Half of the rounds draw from report-ish bytes only, to reach deeper.
            let alphabet = Array("\r\n:;<>@().-5 14abcdefxAZ=+\\{}#".utf8)
            for _ in 0..<count {
                bytes.append(round % 2 == 0 ? UInt8.random(in: 0...255, using: &random) : alphabet.randomElement(using: &random) ?? 0)
            }
            Self.checkInvariants(ReportParser.parse(bytes))
        }
    }

    struct Input: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: [UInt8]
        var testDescription: String { "\(name) (\(bytes.count) bytes)" }
    }

    /// Large and repetitive inputs: each must finish (no quadratic blow-up) and respect the limits.
    static let pathological: [Input] = {
        let header = "From: MAILER-DAEMON@example.org\r\nSubject: Undelivered Mail\r\n\r\n"
        let manyParagraphs = header + "This is the mail system at host example.org.\r\n\r\n"
            + String(repeating: "<a@example.net>: 550 5.1.1 unknown\r\n", count: 20_000)
        let exchange = header + "Delivery has failed to these recipients or groups:\r\n\r\n"
            + (0..<5_000).map { "r\($0)@example.org\r\n" }.joined()
            + "Diagnostic information for administrators:\r\n\r\n"
            + (0..<5_000).map { "r\($0)@example.org\r\nRemote Server returned '550 5.1.1 unknown'\r\n" }.joined()
        let sendmail = header + "----- The following addresses had permanent fatal errors -----\r\n"
            + (0..<5_000).map { "<r\($0)@example.org>\r\n" }.joined()
            + "\r\n----- Transcript of session follows -----\r\n"
            + (0..<5_000).map { "550 5.1.1 <r\($0)@example.org>... User unknown\r\n" }.joined()
        let ats = header + String(repeating: "@", count: 200_000)
        let locals = header + String(repeating: "a", count: 100_000) + "@" + String(repeating: "b.", count: 50_000)
        let fields = "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n"
            + String(repeating: "Final-Recipient: rfc822; a@example.net\r\n", count: 30_000)
        let folded = "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; a@example.net\r\nDiagnostic-Code: smtp; 550\r\n"
            + String(repeating: "  more text\r\n", count: 30_000)
        let nested = String(repeating: "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n", count: 200)
        let html = "From: postmaster@example.org\r\nContent-Type: text/html\r\n\r\n" + String(repeating: "<p>&#x1F600;&amp;<!-- ", count: 20_000)
        return [
            ("paragraphs", manyParagraphs), ("exchange", exchange), ("sendmail", sendmail), ("ats", ats), ("locals", locals),
            ("fields", fields), ("folded", folded), ("nested", nested), ("html", html),
        ].map { Input(name: $0.0, bytes: Array($0.1.utf8)) }
    }()

    @Test(arguments: pathological)
    func pathologicalInputsFinish(input: Input) {
        let report = ReportParser.parse(input.bytes)
        Self.checkInvariants(report)
    }
}
