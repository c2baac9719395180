import NIOCore
import Testing

@testable import SMTPCore

/// What the backend does with a committed message, in tests.
enum CommitOutcome: Sendable {
    case queued(String)
    case refused(SMTPReply)
    case failed
}

/// One event in a session script.
enum Step: Sendable, CustomStringConvertible {
    /// One read from the client.
    case send(String)
    case timeout
    case shutdown

    var description: String {
        switch self {
        case .send(let text): "send(\(text.debugDescription))"
        case .timeout: "timeout"
        case .shutdown: "shutdown"
        }
    }
}

/// Drives framer + state machine the way the channel handler does, with a synchronous backend.
/// The transcript has one entry per reply (`"250 2.1.0"`, or `"220"` without enhanced code),
/// and `<tls>` / `<close>` where the handler would start TLS or close.
struct SessionDriver {
    var machine: SMTPServerStateMachine
    var framer = SMTPServerFramer()
    var input = ByteBuffer()
    var transcript: [String] = []
    var replies: [SMTPReply] = []
    var committed: [SMTPIncomingMessage] = []
    var verified: [SMTPCredentials] = []
    var closed = false
    var commitOutcome: CommitOutcome
    /// `reverse path -> forward path` of each RCPT put to the backend.
    var checkedRecipients: [String] = []
    var checkedSenders: [String] = []

    init(configuration: SMTPServerStateMachine.Configuration, boundIdentity: Bool = false, commitOutcome: CommitOutcome = .queued("Q1")) {
        self.machine = SMTPServerStateMachine(configuration: configuration)
        self.framer = SMTPServerFramer(maxTextLineLength: configuration.limits.maxTextLineLength)
        self.commitOutcome = commitOutcome
        perform(machine.connectionEstablished(hasBoundIdentity: boundIdentity))
    }

    mutating func record(_ reply: SMTPReply) {
        replies.append(reply)
        transcript.append("\(reply.code)" + (reply.enhancedStatusCode.map { " \($0)" } ?? ""))
    }

    mutating func perform(_ action: SMTPServerStateMachine.Action) {
        switch action {
        case .none:
            break
        case .reply(let reply):
            record(reply)
        case .replyAndClose(let replies):
            replies.forEach { record($0) }
            transcript.append("<close>")
            closed = true
        case .replyAndStartTLS(let reply):
            record(reply)
            transcript.append("<tls>")
            input.clear()
            framer = SMTPServerFramer(maxTextLineLength: machine.configuration.limits.maxTextLineLength)
        case .verifyCredentials(let credentials):
            verified.append(credentials)
            if credentials.username == "throttled" {
                perform(machine.credentialsRefused(.authenticationThrottled("from 192.0.2.1", retryAfterSeconds: 120)))
            } else {
                perform(machine.credentialsVerified(credentials.username == "alice" && credentials.password == "secret"))
            }
        case .commitMessage(let message):
            committed.append(message)
            switch commitOutcome {
            case .queued(let id): perform(machine.messageCommitted(queueID: id))
            case .refused(let reply): perform(machine.messageRefused(reply))
            case .failed: perform(machine.messageCommitFailed())
            }
        case .checkSender(let reversePath):
            checkedSenders.append(reversePath.description)
            let refused = reversePath.description.hasSuffix("@forbidden.example")
            perform(machine.senderChecked(
                refusal: refused ? SMTPReply(code: 550, EnhancedStatusCode(class: 5, subject: 7, detail: 1), "Not your domain") : nil))
        case .checkRecipient(let forwardPath, let reversePath, let accepted):
            checkedRecipients.append("\(reversePath) -> \(forwardPath) after \(accepted)")
            let refused = forwardPath.domain?.lowercased() != "ours.example"
            perform(machine.recipientChecked(
                forwardPath, refusal: refused ? SMTPReply(code: 550, EnhancedStatusCode(class: 5, subject: 7, detail: 1), "Relaying denied") : nil))
        }
    }

    mutating func run(_ step: Step) {
        guard !closed else { return }
        switch step {
        case .send(let text):
            input.writeString(text)
            pump()
        case .timeout:
            perform(machine.timedOut())
        case .shutdown:
            perform(machine.shutdownRequested())
        }
    }

    mutating func pump() {
        while !closed {
            framer.mode = machine.framingMode
            guard let frame = try? framer.decode(buffer: &input) else { return }
            perform(machine.frameReceived(frame))
        }
    }
}

enum SessionKind: Sendable {
    /// Port 25 style: no identity needed, no TLS context.
    case mx
    /// Submission on a TLS session (implicit TLS), AUTH offered.
    case submissionTLS
    /// Submission over plaintext with STARTTLS available, remote client.
    case submissionPlain
    /// Plaintext, insecure AUTH allowed, client on loopback.
    case loopbackInsecure
    /// Plaintext, insecure AUTH allowed, client not on loopback.
    case remoteInsecure

    func configuration(limits: SMTPServerLimits) -> SMTPServerStateMachine.Configuration {
        switch self {
        case .mx:
            .init(hostname: "mx.test", limits: limits, offerAuth: false, requireIdentity: false)
        case .submissionTLS:
            .init(hostname: "mx.test", limits: limits, startTLSAvailable: true, isTLS: true)
        case .submissionPlain:
            .init(hostname: "mx.test", limits: limits, startTLSAvailable: true)
        case .loopbackInsecure:
            .init(hostname: "mx.test", limits: limits, allowInsecureAuth: true, clientIsLoopback: true)
        case .remoteInsecure:
            .init(hostname: "mx.test", limits: limits, allowInsecureAuth: true, clientIsLoopback: false)
        }
    }
}

struct SessionCase: Sendable, CustomStringConvertible {
    var name: String
    var kind: SessionKind = .mx
    var limits = SMTPServerLimits()
    var commit: CommitOutcome = .queued("Q1")
    var steps: [Step]
    /// Without the greeting, which every case starts with.
    var expected: [String]
    var description: String { name }
}

let plainAlice = "AGFsaWNlAHNlY3JldA==" // "\0alice\0secret"
let plainWrong = "AGFsaWNlAHdyb25n" // "\0alice\0wrong"
let plainThrottled = "AHRocm90dGxlZAB4" // "\0throttled\0x"
let envelope = "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<r@d.example>\r\n"

struct SMTPServerStateMachineTests {
    static let cases: [SessionCase] = [
        // Greeting, EHLO, HELO
        .init(name: "EHLO", steps: [.send("EHLO client.example\r\n")], expected: ["250"]),
        .init(name: "HELO", steps: [.send("HELO client.example\r\n")], expected: ["250"]),
        .init(name: "EHLO without domain", steps: [.send("EHLO\r\n")], expected: ["501 5.5.4"]),
        .init(name: "EHLO resets the transaction", steps: [.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nEHLO c\r\nRCPT TO:<r@d.example>\r\n")],
              expected: ["250", "250 2.1.0", "250", "503 5.5.1"]),
        // MAIL
        .init(name: "MAIL before EHLO", steps: [.send("MAIL FROM:<a@b.example>\r\n")], expected: ["503 5.5.1"]),
        .init(name: "MAIL needs identity on submission", kind: .submissionTLS, steps: [.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\n")],
              expected: ["250", "530 5.7.0"]),
        .init(name: "nested MAIL", steps: [.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nMAIL FROM:<a@b.example>\r\n")],
              expected: ["250", "250 2.1.0", "503 5.5.1"]),
        .init(name: "null reverse path", steps: [.send("EHLO c\r\nMAIL FROM:<>\r\n")], expected: ["250", "250 2.1.0"]),
        .init(name: "SIZE over the limit", limits: .init(maxMessageSize: 100), steps: [.send("EHLO c\r\nMAIL FROM:<a@b.example> SIZE=101\r\n")],
              expected: ["250", "552 5.3.4"]),
        .init(name: "SIZE at the limit", limits: .init(maxMessageSize: 100), steps: [.send("EHLO c\r\nMAIL FROM:<a@b.example> SIZE=100\r\n")],
              expected: ["250", "250 2.1.0"]),
        .init(name: "unknown MAIL parameter", steps: [.send("EHLO c\r\nMAIL FROM:<a@b.example> XFOO=1\r\n")], expected: ["250", "555 5.5.4"]),
        .init(name: "MAIL syntax error", steps: [.send("EHLO c\r\nMAIL FROM:a@b.example\r\n")], expected: ["250", "501 5.5.4"]),
        .init(name: "non-ASCII sender without SMTPUTF8", steps: [.send("EHLO c\r\nMAIL FROM:<ü@b.example>\r\n")], expected: ["250", "553 5.6.7"]),
        // RCPT
        .init(name: "RCPT before MAIL", steps: [.send("EHLO c\r\nRCPT TO:<r@d.example>\r\n")], expected: ["250", "503 5.5.1"]),
        .init(name: "too many recipients", limits: .init(maxRecipients: 2),
              steps: [.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<r1@d.example>\r\nRCPT TO:<r2@d.example>\r\nRCPT TO:<r3@d.example>\r\n")],
              expected: ["250", "250 2.1.0", "250 2.1.5", "250 2.1.5", "452 4.5.3"]),
        .init(name: "non-ASCII recipient without SMTPUTF8", steps: [.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<ü@d.example>\r\n")],
              expected: ["250", "250 2.1.0", "553 5.6.7"]),
        .init(name: "non-ASCII recipient with SMTPUTF8", steps: [.send("EHLO c\r\nMAIL FROM:<a@b.example> SMTPUTF8\r\nRCPT TO:<ü@d.example>\r\n")],
              expected: ["250", "250 2.1.0", "250 2.1.5"]),
        .init(name: "RCPT parameter", steps: [.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<r@d.example> NOTIFY=NEVER\r\n")],
              expected: ["250", "250 2.1.0", "555 5.5.4"]),
        // DATA
        .init(name: "pipelined MAIL RCPT RCPT DATA", steps: [
            .send("EHLO c\r\n"),
            .send("MAIL FROM:<a@b.example>\r\nRCPT TO:<r1@d.example>\r\nRCPT TO:<r2@d.example>\r\nDATA\r\n"),
            .send("Subject: hi\r\n\r\nbody\r\n.\r\n"),
        ], expected: ["250", "250 2.1.0", "250 2.1.5", "250 2.1.5", "354", "250 2.0.0"]),
        .init(name: "bad RCPT then DATA, then more commands", steps: [
            .send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bad>\r\nDATA\r\nRSET\r\nNOOP\r\n"),
        ], expected: ["250", "250 2.1.0", "501 5.1.3", "554 5.5.1", "250 2.0.0", "250 2.0.0"]),
        .init(name: "DATA before MAIL", steps: [.send("EHLO c\r\nDATA\r\n")], expected: ["250", "503 5.5.1"]),
        .init(name: "message too big", limits: .init(maxMessageSize: 10),
              steps: [.send(envelope + "DATA\r\n0123456789abc\r\n.\r\nNOOP\r\n")],
              expected: ["250", "250 2.1.0", "250 2.1.5", "354", "552 5.3.4", "250 2.0.0"]),
        .init(name: "bare LF in message", steps: [.send(envelope + "DATA\r\nabc\ndef\r\n.\r\n")],
              expected: ["250", "250 2.1.0", "250 2.1.5", "354", "550 5.6.0"]),
        .init(name: "smuggled end of data is content", steps: [.send(envelope + "DATA\r\nabc\n.\nMAIL FROM:<x@y.example>\r\nRCPT TO:<z@y.example>\r\nDATA\r\nevil\r\n.\r\nQUIT\r\n")],
              expected: ["250", "250 2.1.0", "250 2.1.5", "354", "550 5.6.0", "221 2.0.0", "<close>"]),
        .init(name: "long line in message", limits: .init(maxTextLineLength: 20),
              steps: [.send(envelope + "DATA\r\n" + String(repeating: "x", count: 30) + "\r\n.\r\n")],
              expected: ["250", "250 2.1.0", "250 2.1.5", "354", "550 5.6.0"]),
        .init(name: "backend refuses", commit: .refused(SMTPReply(code: 550, EnhancedStatusCode(class: 5, subject: 7, detail: 1), "no")),
              steps: [.send(envelope + "DATA\r\nx\r\n.\r\n")], expected: ["250", "250 2.1.0", "250 2.1.5", "354", "550 5.7.1"]),
        .init(name: "backend fails", commit: .failed,
              steps: [.send(envelope + "DATA\r\nx\r\n.\r\n")], expected: ["250", "250 2.1.0", "250 2.1.5", "354", "451 4.3.0"]),
        .init(name: "two messages in one session", steps: [
            .send(envelope + "DATA\r\nx\r\n.\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<r@d.example>\r\nDATA\r\ny\r\n.\r\n"),
        ], expected: ["250", "250 2.1.0", "250 2.1.5", "354", "250 2.0.0", "250 2.1.0", "250 2.1.5", "354", "250 2.0.0"]),
        // BDAT
        .init(name: "BDAT chunks", steps: [.send(envelope + "BDAT 5\r\nhelloBDAT 8 LAST\r\n world\r\n")],
              expected: ["250", "250 2.1.0", "250 2.1.5", "250 2.0.0", "250 2.0.0"]),
        .init(name: "BDAT 0 LAST", steps: [.send(envelope + "BDAT 3\r\nhi\nBDAT 0 LAST\r\n")],
              expected: ["250", "250 2.1.0", "250 2.1.5", "250 2.0.0", "550 5.6.0"]),
        .init(name: "BDAT CRLF split across chunks", steps: [.send(envelope + "BDAT 3\r\nab\rBDAT 1 LAST\r\n\n")],
              expected: ["250", "250 2.1.0", "250 2.1.5", "250 2.0.0", "250 2.0.0"]),
        .init(name: "DATA after BDAT", steps: [.send(envelope + "BDAT 2\r\nabDATA\r\n")],
              expected: ["250", "250 2.1.0", "250 2.1.5", "250 2.0.0", "503 5.5.1"]),
        .init(name: "BDAT without recipients consumes its chunk", steps: [.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nBDAT 6\r\nNOOP\r\nRSET\r\n")],
              expected: ["250", "250 2.1.0", "554 5.5.1", "250 2.0.0"]),
        .init(name: "BDAT without MAIL", steps: [.send("EHLO c\r\nBDAT 4 LAST\r\nQUITNOOP\r\n")],
              expected: ["250", "503 5.5.1", "250 2.0.0"]),
        .init(name: "BDAT over the size limit", limits: .init(maxMessageSize: 4), steps: [.send(envelope + "BDAT 5\r\nhelloNOOP\r\n")],
              expected: ["250", "250 2.1.0", "250 2.1.5", "552 5.3.4", "250 2.0.0"]),
        // Other commands
        .init(name: "RSET NOOP HELP VRFY EXPN QUIT", steps: [.send("RSET\r\nNOOP\r\nHELP\r\nVRFY bob\r\nEXPN staff\r\nQUIT\r\nNOOP\r\n")],
              expected: ["250 2.0.0", "250 2.0.0", "214 2.0.0", "252 2.5.0", "502 5.5.1", "221 2.0.0", "<close>"]),
        .init(name: "unknown verb", steps: [.send("FOO\r\n")], expected: ["500 5.5.2"]),
        .init(name: "command line too long", steps: [.send(String(repeating: "N", count: 600) + "\r\nNOOP\r\n")], expected: ["500 5.5.2", "250 2.0.0"]),
        .init(name: "bare LF in command line", steps: [.send("NO\nOP\r\nNOOP\r\n")], expected: ["500 5.5.2", "250 2.0.0"]),
        .init(name: "too many errors", limits: .init(maxErrors: 3), steps: [.send("FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n")],
              expected: ["500 5.5.2", "500 5.5.2", "500 5.5.2", "421 4.7.0", "<close>"]),
        // STARTTLS
        .init(name: "STARTTLS discards pipelined commands and resets", kind: .submissionPlain, steps: [
            .send("EHLO c\r\nSTARTTLS\r\nMAIL FROM:<a@b.example>\r\n"),
            .send("MAIL FROM:<a@b.example>\r\n"),
            .send("EHLO c\r\nSTARTTLS\r\n"),
        ], expected: ["250", "220 2.0.0", "<tls>", "503 5.5.1", "250", "503 5.5.1"]),
        .init(name: "STARTTLS without TLS context", steps: [.send("STARTTLS\r\n")], expected: ["454 4.7.0"]),
        .init(name: "STARTTLS when already TLS", kind: .submissionTLS, steps: [.send("EHLO c\r\nSTARTTLS\r\n")], expected: ["250", "503 5.5.1"]),
        // AUTH
        .init(name: "AUTH PLAIN initial response", kind: .submissionTLS,
              steps: [.send("EHLO c\r\nAUTH PLAIN \(plainAlice)\r\nMAIL FROM:<a@b.example>\r\n")],
              expected: ["250", "235 2.7.0", "250 2.1.0"]),
        .init(name: "AUTH PLAIN continuation", kind: .submissionTLS,
              steps: [.send("EHLO c\r\nAUTH PLAIN\r\n"), .send("\(plainAlice)\r\n")],
              expected: ["250", "334", "235 2.7.0"]),
        .init(name: "AUTH LOGIN", kind: .submissionTLS,
              steps: [.send("EHLO c\r\nAUTH LOGIN\r\n"), .send("YWxpY2U=\r\n"), .send("c2VjcmV0\r\n")],
              expected: ["250", "334", "334", "235 2.7.0"]),
        .init(name: "AUTH LOGIN with initial username", kind: .submissionTLS,
              steps: [.send("EHLO c\r\nAUTH LOGIN YWxpY2U=\r\nc2VjcmV0\r\n")],
              expected: ["250", "334", "235 2.7.0"]),
        .init(name: "AUTH cancelled", kind: .submissionTLS, steps: [.send("EHLO c\r\nAUTH LOGIN\r\n*\r\nNOOP\r\n")],
              expected: ["250", "334", "501 5.0.0", "250 2.0.0"]),
        .init(name: "AUTH bad base64", kind: .submissionTLS, steps: [.send("EHLO c\r\nAUTH PLAIN\r\n!!!!\r\n")],
              expected: ["250", "334", "501 5.5.2"]),
        .init(name: "AUTH wrong password", kind: .submissionTLS, steps: [.send("EHLO c\r\nAUTH PLAIN \(plainWrong)\r\nMAIL FROM:<a@b.example>\r\n")],
              expected: ["250", "535 5.7.8", "530 5.7.0"]),
        .init(name: "AUTH refused by the backend (throttled), then AUTH again", kind: .submissionTLS,
              steps: [.send("EHLO c\r\nAUTH PLAIN \(plainThrottled)\r\nMAIL FROM:<a@b.example>\r\nAUTH PLAIN \(plainAlice)\r\n")],
              expected: ["250", "454 4.7.0", "530 5.7.0", "235 2.7.0"]),
        .init(name: "AUTH refusals count as errors", kind: .submissionTLS, limits: .init(maxErrors: 2),
              steps: [.send("EHLO c\r\nAUTH PLAIN \(plainThrottled)\r\nAUTH PLAIN \(plainThrottled)\r\n")],
              expected: ["250", "454 4.7.0", "454 4.7.0", "421 4.7.0", "<close>"]),
        .init(name: "AUTH before TLS", kind: .submissionPlain, steps: [.send("EHLO c\r\nAUTH PLAIN \(plainAlice)\r\n")],
              expected: ["250", "538 5.7.11"]),
        .init(name: "insecure AUTH on loopback", kind: .loopbackInsecure, steps: [.send("EHLO c\r\nAUTH PLAIN \(plainAlice)\r\n")],
              expected: ["250", "235 2.7.0"]),
        .init(name: "insecure AUTH not honoured for remote clients", kind: .remoteInsecure, steps: [.send("EHLO c\r\nAUTH PLAIN \(plainAlice)\r\n")],
              expected: ["250", "538 5.7.11"]),
        .init(name: "AUTH unknown mechanism", kind: .submissionTLS, steps: [.send("EHLO c\r\nAUTH CRAM-MD5\r\n")], expected: ["250", "504 5.5.4"]),
        .init(name: "AUTH twice", kind: .submissionTLS, steps: [.send("EHLO c\r\nAUTH PLAIN \(plainAlice)\r\nAUTH PLAIN \(plainAlice)\r\n")],
              expected: ["250", "235 2.7.0", "503 5.5.1"]),
        .init(name: "AUTH inside a transaction", kind: .submissionTLS,
              steps: [.send("EHLO c\r\nAUTH PLAIN \(plainAlice)\r\nMAIL FROM:<a@b.example>\r\nAUTH LOGIN\r\n")],
              expected: ["250", "235 2.7.0", "250 2.1.0", "503 5.5.1"]),
        .init(name: "AUTH before EHLO", kind: .submissionTLS, steps: [.send("AUTH PLAIN \(plainAlice)\r\n")], expected: ["503 5.5.1"]),
        .init(name: "AUTH not offered", steps: [.send("EHLO c\r\nAUTH PLAIN \(plainAlice)\r\n")], expected: ["250", "502 5.5.1"]),
        .init(name: "long AUTH line is allowed", kind: .submissionTLS,
              steps: [.send("EHLO c\r\nAUTH PLAIN " + String(repeating: "QUFB", count: 300) + "\r\n")], expected: ["250", "501 5.5.2"]),
        // Timeouts and shutdown
        .init(name: "timeout", steps: [.send("EHLO c\r\n"), .timeout], expected: ["250", "421 4.4.2", "<close>"]),
        .init(name: "shutdown when idle", steps: [.send("EHLO c\r\n"), .shutdown], expected: ["250", "421 4.3.2", "<close>"]),
        .init(name: "shutdown during DATA finishes the message", steps: [
            .send(envelope + "DATA\r\nfirst part\r\n"), .shutdown, .send("rest\r\n.\r\nNOOP\r\n"),
        ], expected: ["250", "250 2.1.0", "250 2.1.5", "354", "250 2.0.0", "421 4.3.2", "<close>"]),
        .init(name: "shutdown between BDAT chunks waits for LAST", steps: [
            .send(envelope + "BDAT 2\r\nab"), .shutdown, .send("BDAT 1 LAST\r\nc"),
        ], expected: ["250", "250 2.1.0", "250 2.1.5", "250 2.0.0", "250 2.0.0", "421 4.3.2", "<close>"]),
    ]

    @Test(arguments: cases)
    func session(testCase: SessionCase) {
        var driver = SessionDriver(configuration: testCase.kind.configuration(limits: testCase.limits), commitOutcome: testCase.commit)
        for step in testCase.steps { driver.run(step) }
        #expect(driver.transcript == ["220"] + testCase.expected)
    }

    @Test
    func greetingAndEHLOText() {
        var driver = SessionDriver(configuration: SessionKind.submissionPlain.configuration(limits: .init()))
        driver.run(.send("EHLO c\r\n"))
        #expect(driver.replies[0].description == "220 mx.test ESMTP Tern\r\n")
        #expect(driver.replies[1].lines == [
            "mx.test", "PIPELINING", "SIZE 26214400", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "STARTTLS",
        ])
    }

    @Test(arguments: [
        (SessionKind.submissionTLS, true, false),
        (.submissionPlain, false, true),
        (.loopbackInsecure, true, false),
        (.remoteInsecure, false, false),
        (.mx, false, false),
    ])
    func ehloAdvertisesAuthOnlyWhenUsable(kind: SessionKind, auth: Bool, startTLS: Bool) {
        var driver = SessionDriver(configuration: kind.configuration(limits: .init()))
        driver.run(.send("EHLO c\r\n"))
        #expect(driver.replies[1].lines.contains("AUTH PLAIN LOGIN") == auth)
        #expect(driver.replies[1].lines.contains("STARTTLS") == startTLS)
    }

    @Test
    func committedMessageCarriesEnvelopeAndContent() {
        var driver = SessionDriver(configuration: SessionKind.submissionTLS.configuration(limits: .init()))
        driver.run(.send("EHLO c\r\nAUTH PLAIN \(plainAlice)\r\nMAIL FROM:<a@b.example> BODY=8BITMIME\r\nRCPT TO:<r1@d.example>\r\nRCPT TO:<r2@d.example>\r\nDATA\r\n"))
        driver.run(.send("Subject: x\r\n\r\n..dot\r\nend\r\n.\r\n"))
        #expect(driver.replies.last?.description == "250 2.0.0 Ok: queued as Q1\r\n")
        let message = driver.committed.first
        #expect(message?.heloName == "c")
        #expect(message?.protocolName == "ESMTPSA")
        #expect(message?.reversePath.description == "a@b.example")
        #expect(message?.recipients.map(\.description) == ["r1@d.example", "r2@d.example"])
        #expect(message?.parameters.body == .eightBitMIME)
        #expect(message.map { String(buffer: $0.content) } == "Subject: x\r\n\r\n.dot\r\nend\r\n")
        #expect(driver.verified.first?.description.contains("secret") == false)
    }

    /// An MX puts each RCPT to the backend: refused ones get its reply and count as errors,
    /// taken ones are in the transaction; a pipelined batch keeps its order.
    @Test
    func checkedRecipientsAreTakenOrRefusedByTheBackend() {
        var configuration = SessionKind.mx.configuration(limits: SMTPServerLimits(maxErrors: 3))
        configuration.checkRecipients = true
        var driver = SessionDriver(configuration: configuration)
        driver.run(.send(
            "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<b-x@ours.example>\r\nRCPT TO:<a@elsewhere.example>\r\n"
                + "RCPT TO:<c@OURS.example>\r\nDATA\r\nx\r\n.\r\n"))
        #expect(driver.transcript == ["220", "250", "250 2.1.0", "250 2.1.5", "550 5.7.1", "250 2.1.5", "354", "250 2.0.0"])
        // Each is asked with the number of recipients taken before it (refused ones not counted).
        #expect(driver.checkedRecipients == [" -> b-x@ours.example after 0", " -> a@elsewhere.example after 1", " -> c@OURS.example after 1"])
        #expect(driver.committed.first?.recipients.map(\.description) == ["b-x@ours.example", "c@OURS.example"])

        // Refusals are errors: the third closes the session.
        var closing = SessionDriver(configuration: configuration)
        closing.run(.send("EHLO c\r\nMAIL FROM:<s@x.example>\r\n" + String(repeating: "RCPT TO:<a@elsewhere.example>\r\n", count: 4)))
        #expect(closing.transcript == ["220", "250", "250 2.1.0", "550 5.7.1", "550 5.7.1", "550 5.7.1", "421 4.7.0", "<close>"])
    }

    /// Submission puts each MAIL to the backend: a refused one starts no transaction (RCPT
    /// gets 503), a taken one does; the null reverse path is asked about too.
    @Test
    func checkedSendersAreTakenOrRefusedByTheBackend() {
        var configuration = SessionKind.submissionPlain.configuration(limits: .init())
        configuration.checkSenders = true
        var driver = SessionDriver(configuration: configuration, boundIdentity: true)
        driver.run(.send(
            "EHLO c\r\nMAIL FROM:<a@forbidden.example>\r\nRCPT TO:<r@d.example>\r\nMAIL FROM:<a@ok.example>\r\n"
                + "RCPT TO:<r@d.example>\r\nDATA\r\nx\r\n.\r\nMAIL FROM:<>\r\n"))
        #expect(driver.transcript == ["220", "250", "550 5.7.1", "503 5.5.1", "250 2.1.0", "250 2.1.5", "354", "250 2.0.0", "250 2.1.0"])
        #expect(driver.checkedSenders == ["a@forbidden.example", "a@ok.example", ""])
        #expect(driver.committed.first?.reversePath.description == "a@ok.example")
    }

    @Test
    func boundIdentityAllowsMail() {
        var driver = SessionDriver(configuration: SessionKind.submissionPlain.configuration(limits: .init()), boundIdentity: true)
        driver.run(.send(envelope + "DATA\r\nx\r\n.\r\n"))
        #expect(driver.transcript == ["220", "250", "250 2.1.0", "250 2.1.5", "354", "250 2.0.0"])
        #expect(driver.committed.first?.protocolName == "ESMTP")
    }

    @Test
    func replyTexts() {
        var driver = SessionDriver(configuration: SessionKind.mx.configuration(limits: .init(maxRecipients: 1)))
        driver.run(.send("VRFY x\r\n" + envelope + "RCPT TO:<s@d.example>\r\n"))
        #expect(driver.replies.map(\.description).contains("252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"))
        #expect(driver.replies.last?.description == "452 4.5.3 Too many recipients\r\n")
    }

    @Test
    func framingModeFollowsState() {
        var machine = SMTPServerStateMachine(configuration: SessionKind.mx.configuration(limits: .init()))
        _ = machine.connectionEstablished(hasBoundIdentity: false)
        #expect(machine.framingMode == .command(maxLineLength: 512))
        for line in ["EHLO c", "MAIL FROM:<a@b.example>", "RCPT TO:<r@d.example>", "DATA"] {
            _ = machine.frameReceived(.line(ByteBuffer(string: line)))
        }
        #expect(machine.framingMode == .data)
        _ = machine.frameReceived(.dataEnd(.init()))
        #expect(machine.framingMode == .command(maxLineLength: 512))
    }
}
