import NIOCore
import Testing

@testable import SMTPCore

/// Drives a client machine with a scripted server and records what it wrote and decided.
struct ScriptedClient {
    enum Event: Sendable {
        case reply(String)
        case closed
        case timeout
    }

    var machine: SMTPClientStateMachine
    var messages: [SMTPOutgoingEnvelope]
    var written: [String] = []
    var outcomes: [[String]] = []
    var failure: SMTPClientError?
    var closed = false

    init(policy: SMTPClientTLSPolicy = .opportunistic, pipelining: Bool = true, messages: [SMTPOutgoingEnvelope]) {
        machine = SMTPClientStateMachine(
            configuration: SMTPClientConfiguration(localHostname: "client.test", tlsPolicy: policy, usePipelining: pipelining),
            remoteHost: "mx.test"
        )
        self.messages = messages
        #expect(machine.connectionEstablished() == .wait)
    }

    mutating func run(_ events: [Event]) {
        for event in events {
            switch event {
            case .reply(let text):
                var buffer = ByteBuffer(string: text.split(separator: "|", omittingEmptySubsequences: false).joined(separator: "\r\n") + "\r\n")
                while buffer.readableBytes > 0 {
                    guard let reply = try? SMTPReplyParser.parseReply(&buffer) else {
                        Issue.record("bad scripted reply \(text)")
                        return
                    }
                    perform(machine.replyReceived(reply))
                }
            case .closed:
                perform(machine.connectionClosed())
            case .timeout:
                perform(machine.timeoutFired())
            }
        }
    }

    mutating func perform(_ action: SMTPClientStateMachine.Action) {
        switch action {
        case .wait:
            break
        case .sendCommands(let commands):
            var buffer = ByteBuffer()
            for command in commands { buffer.writeSMTPCommand(command) }
            written.append(String(buffer: buffer).split(separator: "\r\n").joined(separator: "|"))
        case .startTLS:
            written.append("<tls>")
            perform(machine.tlsEstablished())
        case .sendContent:
            written.append("<content>")
            perform(machine.contentSent())
        case .sendEndOfDataOnly:
            written.append(".")
        case .sessionReady:
            nextMessage()
        case .sessionFailed(let error, let sendQuit):
            failure = error
            if sendQuit { written.append("QUIT") } else { closed = true }
        case .deliveryCompleted(let result, let close):
            outcomes.append(result.map(Self.describe))
            for outcome in result {
                #expect(outcome.remoteHost == "mx.test")
                #expect(outcome.tlsUsed == machine.tlsActive)
            }
            if close { closed = true } else { nextMessage() }
        case .closeConnection:
            closed = true
        }
    }

    mutating func nextMessage() {
        if messages.isEmpty {
            perform(machine.quit())
        } else {
            perform(machine.startTransaction(messages.removeFirst()))
        }
    }

    static func describe(_ outcome: SMTPDeliveryOutcome) -> String {
        let code = outcome.enhancedStatusCode.map { " \($0)" } ?? ""
        return "\(outcome.recipient) \(outcome.status) \(outcome.code)\(code)\(outcome.isRemoteReply ? "" : " local")"
    }
}

func mailbox(_ address: String) -> SMTPMailbox {
    let parts = address.split(separator: "@", maxSplits: 1)
    return SMTPMailbox(localPart: String(parts[0]), domain: parts.count > 1 ? String(parts[1]) : nil)
}

func envelope(_ recipients: [String], size: Int = 100, eightBit: Bool = false, utf8: Bool = false, from: String = "s@a.test") -> SMTPOutgoingEnvelope {
    SMTPOutgoingEnvelope(
        reversePath: .mailbox(mailbox(from)), recipients: recipients.map(mailbox), contentSize: size,
        needsEightBitMIME: eightBit, needsSMTPUTF8: utf8
    )
}

struct StateMachineCase: Sendable, CustomStringConvertible {
    var name: String
    var policy: SMTPClientTLSPolicy = .opportunistic
    var pipelining = true
    var messages: [SMTPOutgoingEnvelope]
    var events: [ScriptedClient.Event]
    var written: [String]
    var outcomes: [[String]]
    var failure: String? = nil
    var closed = false

    var description: String { name }
}

let esmtpPipelining = "250-mx.test|250-PIPELINING|250-SIZE 1000|250-8BITMIME|250 ENHANCEDSTATUSCODES"
let esmtpPlain = "250-mx.test|250 8BITMIME"

struct SMTPClientStateMachineTests {
    static let cases: [StateMachineCase] = [
        StateMachineCase(
            name: "250 path without pipelining",
            messages: [envelope(["r@d.test"])],
            events: [.reply("220 mx.test ESMTP"), .reply(esmtpPlain), .reply("250 Ok"), .reply("250 Ok"), .reply("354 go"), .reply("250 queued as X"), .reply("221 Bye")],
            written: ["EHLO client.test", "MAIL FROM:<s@a.test>", "RCPT TO:<r@d.test>", "DATA", "<content>", "QUIT"],
            outcomes: [["r@d.test sent 250"]],
            closed: true
        ),
        StateMachineCase(
            name: "pipelining batch with SIZE and enhanced codes",
            messages: [envelope(["r1@d.test", "r2@d.test"], eightBit: true)],
            events: [
                .reply("220 mx.test ESMTP"), .reply(esmtpPipelining),
                .reply("250 2.1.0 Ok"), .reply("250 2.1.5 Ok"), .reply("250 2.1.5 Ok"), .reply("354 go"),
                .reply("250 2.0.0 queued"), .reply("221 2.0.0 Bye"),
            ],
            written: [
                "EHLO client.test",
                "MAIL FROM:<s@a.test> SIZE=100 BODY=8BITMIME|RCPT TO:<r1@d.test>|RCPT TO:<r2@d.test>|DATA",
                "<content>", "QUIT",
            ],
            outcomes: [["r1@d.test sent 250 2.0.0", "r2@d.test sent 250 2.0.0"]],
            closed: true
        ),
        StateMachineCase(
            name: "RCPT mixed 250/450/550",
            messages: [envelope(["ok@d.test", "later@d.test", "bad@d.test"])],
            events: [
                .reply("220 mx.test"), .reply(esmtpPipelining),
                .reply("250 2.1.0 Ok"), .reply("250 2.1.5 Ok"), .reply("450 4.2.0 greylisted"), .reply("550 5.1.1 no such user"),
                .reply("354 go"), .reply("250 2.0.0 queued"), .reply("221 Bye"),
            ],
            written: [
                "EHLO client.test",
                "MAIL FROM:<s@a.test> SIZE=100|RCPT TO:<ok@d.test>|RCPT TO:<later@d.test>|RCPT TO:<bad@d.test>|DATA",
                "<content>", "QUIT",
            ],
            outcomes: [["ok@d.test sent 250 2.0.0", "later@d.test deferred 450 4.2.0", "bad@d.test failed 550 5.1.1"]],
            closed: true
        ),
        StateMachineCase(
            name: "RCPT mixed without pipelining, then DATA 451",
            pipelining: false,
            messages: [envelope(["ok@d.test", "bad@d.test"])],
            events: [
                .reply("220 mx.test"), .reply(esmtpPipelining),
                .reply("250 2.1.0 Ok"), .reply("250 2.1.5 Ok"), .reply("550 5.1.1 no"), .reply("451 4.3.0 try later"), .reply("221 Bye"),
            ],
            written: ["EHLO client.test", "MAIL FROM:<s@a.test> SIZE=100", "RCPT TO:<ok@d.test>", "RCPT TO:<bad@d.test>", "DATA", "QUIT"],
            outcomes: [["ok@d.test deferred 451 4.3.0", "bad@d.test failed 550 5.1.1"]],
            closed: true
        ),
        StateMachineCase(
            name: "end of data 554 fails accepted recipients",
            messages: [envelope(["a@d.test", "b@d.test"])],
            events: [
                .reply("220 mx.test"), .reply(esmtpPipelining),
                .reply("250 2.1.0 Ok"), .reply("250 2.1.5 Ok"), .reply("550 5.1.1 no"), .reply("354 go"),
                .reply("554 5.7.1 spam"), .reply("221 Bye"),
            ],
            written: [
                "EHLO client.test", "MAIL FROM:<s@a.test> SIZE=100|RCPT TO:<a@d.test>|RCPT TO:<b@d.test>|DATA", "<content>", "QUIT",
            ],
            outcomes: [["a@d.test failed 554 5.7.1", "b@d.test failed 550 5.1.1"]],
            closed: true
        ),
        StateMachineCase(
            name: "end of data 451 defers",
            messages: [envelope(["a@d.test"])],
            events: [
                .reply("220 mx.test"), .reply(esmtpPlain), .reply("250 Ok"), .reply("250 Ok"), .reply("354 go"), .reply("451 local error"),
            ],
            written: ["EHLO client.test", "MAIL FROM:<s@a.test>", "RCPT TO:<a@d.test>", "DATA", "<content>", "QUIT"],
            outcomes: [["a@d.test deferred 451"]]
        ),
        StateMachineCase(
            name: "421 greeting ends the attempt without QUIT",
            messages: [envelope(["a@d.test"])],
            events: [.reply("421 4.3.2 mx.test busy")],
            written: [],
            outcomes: [],
            failure: "greetingRefused: 421 4.3.2 mx.test busy",
            closed: true
        ),
        StateMachineCase(
            name: "554 greeting ends the attempt with QUIT",
            messages: [envelope(["a@d.test"])],
            events: [.reply("554 no service"), .reply("221 Bye")],
            written: ["QUIT"],
            outcomes: [],
            failure: "greetingRefused: 554 no service",
            closed: true
        ),
        StateMachineCase(
            name: "HELO fallback",
            messages: [envelope(["a@d.test"], eightBit: true)],
            events: [
                .reply("220 old.test"), .reply("502 what?"), .reply("250 old.test"),
                .reply("250 ok"), .reply("250 ok"), .reply("354 go"), .reply("250 ok"), .reply("221 bye"),
            ],
            written: ["EHLO client.test", "HELO client.test", "MAIL FROM:<s@a.test>", "RCPT TO:<a@d.test>", "DATA", "<content>", "QUIT"],
            outcomes: [["a@d.test sent 250"]],
            closed: true
        ),
        StateMachineCase(
            name: "EHLO and HELO refused",
            messages: [envelope(["a@d.test"])],
            events: [.reply("220 old.test"), .reply("502 what?"), .reply("550 go away"), .reply("221 bye")],
            written: ["EHLO client.test", "HELO client.test", "QUIT"],
            outcomes: [],
            failure: "helloRefused: 550 go away",
            closed: true
        ),
        StateMachineCase(
            name: "STARTTLS required but not offered",
            policy: .required,
            messages: [envelope(["a@d.test"])],
            events: [.reply("220 mx.test"), .reply(esmtpPipelining), .reply("221 2.0.0 Bye")],
            written: ["EHLO client.test", "QUIT"],
            outcomes: [],
            failure: "tlsRequired: 454 4.7.4 TLS is required, but was not offered by host mx.test",
            closed: true
        ),
        StateMachineCase(
            name: "STARTTLS required but refused",
            policy: .required,
            messages: [envelope(["a@d.test"])],
            events: [.reply("220 mx.test"), .reply("250-mx.test|250 STARTTLS"), .reply("454 TLS not available"), .reply("221 Bye")],
            written: ["EHLO client.test", "STARTTLS", "QUIT"],
            outcomes: [],
            failure: "tlsRequired: 454 4.7.4 TLS is required, but mx.test refused STARTTLS: 454 TLS not available",
            closed: true
        ),
        StateMachineCase(
            name: "STARTTLS opportunistic and offered: EHLO again",
            messages: [envelope(["a@d.test"])],
            events: [
                .reply("220 mx.test"), .reply("250-mx.test|250-PIPELINING|250 STARTTLS"), .reply("220 go ahead"),
                .reply("250-mx.test|250 PIPELINING"), .reply("250 ok|250 ok|354 go"), .reply("250 ok"), .reply("221 bye"),
            ],
            written: ["EHLO client.test", "STARTTLS", "<tls>", "EHLO client.test", "MAIL FROM:<s@a.test>|RCPT TO:<a@d.test>|DATA", "<content>", "QUIT"],
            outcomes: [["a@d.test sent 250"]],
            closed: true
        ),
        StateMachineCase(
            name: "STARTTLS opportunistic, refused: continue in clear",
            messages: [envelope(["a@d.test"])],
            events: [
                .reply("220 mx.test"), .reply("250-mx.test|250 STARTTLS"), .reply("454 4.7.0 no"),
                .reply("250 ok"), .reply("250 ok"), .reply("354 go"), .reply("250 ok"), .reply("221 bye"),
            ],
            written: ["EHLO client.test", "STARTTLS", "MAIL FROM:<s@a.test>", "RCPT TO:<a@d.test>", "DATA", "<content>", "QUIT"],
            outcomes: [["a@d.test sent 250"]],
            closed: true
        ),
        StateMachineCase(
            name: "STARTTLS disabled: not sent even when offered",
            policy: .disabled,
            messages: [],
            events: [.reply("220 mx.test"), .reply("250-mx.test|250 STARTTLS"), .reply("221 bye")],
            written: ["EHLO client.test", "QUIT"],
            outcomes: [],
            closed: true
        ),
        StateMachineCase(
            name: "SMTPUTF8 needed but not offered: 5.6.7 for all, nothing sent",
            messages: [envelope(["j\u{f6}rg@d.test", "b@d.test"])],
            events: [.reply("220 mx.test"), .reply(esmtpPipelining), .reply("221 bye")],
            written: ["EHLO client.test", "QUIT"],
            outcomes: [["j\u{f6}rg@d.test failed 550 5.6.7 local", "b@d.test failed 550 5.6.7 local"]],
            closed: true
        ),
        StateMachineCase(
            name: "SMTPUTF8 needed and offered",
            messages: [envelope(["b@d.test"], utf8: true)],
            events: [
                .reply("220 mx.test"), .reply("250-mx.test|250-PIPELINING|250 SMTPUTF8"), .reply("250 ok|250 ok|354 go"), .reply("250 ok"),
                .reply("221 bye"),
            ],
            written: ["EHLO client.test", "MAIL FROM:<s@a.test> SMTPUTF8|RCPT TO:<b@d.test>|DATA", "<content>", "QUIT"],
            outcomes: [["b@d.test sent 250"]],
            closed: true
        ),
        StateMachineCase(
            name: "SIZE too big: 5.3.4 for all, nothing sent",
            messages: [envelope(["a@d.test", "b@d.test"], size: 1001)],
            events: [.reply("220 mx.test"), .reply(esmtpPipelining), .reply("221 bye")],
            written: ["EHLO client.test", "QUIT"],
            outcomes: [["a@d.test failed 552 5.3.4 local", "b@d.test failed 552 5.3.4 local"]],
            closed: true
        ),
        StateMachineCase(
            name: "connection dropped mid-DATA: accepted deferred, refused keep their outcome",
            messages: [envelope(["a@d.test", "bad@d.test"])],
            events: [
                .reply("220 mx.test"), .reply(esmtpPipelining),
                .reply("250 2.1.0 Ok"), .reply("250 2.1.5 Ok"), .reply("550 5.1.1 no"), .reply("354 go"), .closed,
            ],
            written: ["EHLO client.test", "MAIL FROM:<s@a.test> SIZE=100|RCPT TO:<a@d.test>|RCPT TO:<bad@d.test>|DATA", "<content>"],
            outcomes: [["a@d.test deferred 421 4.4.2 local", "bad@d.test failed 550 5.1.1"]],
            closed: true
        ),
        StateMachineCase(
            name: "timeout waiting for RCPT replies defers everything pending",
            messages: [envelope(["a@d.test", "b@d.test"])],
            events: [.reply("220 mx.test"), .reply(esmtpPipelining), .reply("250 2.1.0 Ok"), .reply("250 2.1.5 Ok"), .timeout],
            written: ["EHLO client.test", "MAIL FROM:<s@a.test> SIZE=100|RCPT TO:<a@d.test>|RCPT TO:<b@d.test>|DATA"],
            outcomes: [["a@d.test deferred 421 4.4.2 local", "b@d.test deferred 421 4.4.2 local"]],
            closed: true
        ),
        StateMachineCase(
            name: "421 in the middle of the RCPTs",
            pipelining: false,
            messages: [envelope(["a@d.test", "b@d.test"])],
            events: [.reply("220 mx.test"), .reply(esmtpPlain), .reply("250 Ok"), .reply("250 Ok"), .reply("421 4.3.2 shutting down")],
            written: ["EHLO client.test", "MAIL FROM:<s@a.test>", "RCPT TO:<a@d.test>", "RCPT TO:<b@d.test>"],
            outcomes: [["a@d.test deferred 421", "b@d.test deferred 421"]],
            closed: true
        ),
        StateMachineCase(
            name: "MAIL 452 defers every recipient",
            messages: [envelope(["a@d.test", "b@d.test"])],
            events: [
                .reply("220 mx.test"), .reply(esmtpPipelining),
                .reply("452 4.3.1 full"), .reply("503 5.5.1 no MAIL"), .reply("503 5.5.1 no MAIL"), .reply("503 5.5.1 no"), .reply("221 bye"),
            ],
            written: ["EHLO client.test", "MAIL FROM:<s@a.test> SIZE=100|RCPT TO:<a@d.test>|RCPT TO:<b@d.test>|DATA", "QUIT"],
            outcomes: [["a@d.test deferred 452 4.3.1", "b@d.test deferred 452 4.3.1"]],
            closed: true
        ),
        StateMachineCase(
            name: "several messages: RSET after a transaction with no accepted recipient",
            pipelining: false,
            messages: [envelope(["bad@d.test"]), envelope(["good@d.test"]), envelope(["also@d.test"])],
            events: [
                .reply("220 mx.test"), .reply(esmtpPlain),
                .reply("250 Ok"), .reply("550 no"),
                .reply("250 reset"), .reply("250 Ok"), .reply("250 Ok"), .reply("354 go"), .reply("250 queued"),
                .reply("250 Ok"), .reply("250 Ok"), .reply("354 go"), .reply("250 queued"),
                .reply("221 bye"),
            ],
            written: [
                "EHLO client.test",
                "MAIL FROM:<s@a.test>", "RCPT TO:<bad@d.test>",
                "RSET", "MAIL FROM:<s@a.test>", "RCPT TO:<good@d.test>", "DATA", "<content>",
                "MAIL FROM:<s@a.test>", "RCPT TO:<also@d.test>", "DATA", "<content>",
                "QUIT",
            ],
            outcomes: [["bad@d.test failed 550"], ["good@d.test sent 250"], ["also@d.test sent 250"]],
            closed: true
        ),
        StateMachineCase(
            name: "pipelined: no accepted recipient but 354: end of data only, then RSET",
            messages: [envelope(["bad@d.test"]), envelope(["good@d.test"])],
            events: [
                .reply("220 mx.test"), .reply(esmtpPipelining),
                .reply("250 2.1.0 Ok|550 5.1.1 no|354 go"), .reply("554 5.5.1 no valid recipients"),
                .reply("250 2.0.0 reset|250 2.1.0 Ok|250 2.1.5 Ok|354 go"), .reply("250 2.0.0 queued"), .reply("221 bye"),
            ],
            written: [
                "EHLO client.test",
                "MAIL FROM:<s@a.test> SIZE=100|RCPT TO:<bad@d.test>|DATA", ".",
                "RSET|MAIL FROM:<s@a.test> SIZE=100|RCPT TO:<good@d.test>|DATA", "<content>", "QUIT",
            ],
            outcomes: [["bad@d.test failed 550 5.1.1"], ["good@d.test sent 250 2.0.0"]],
            closed: true
        ),
        StateMachineCase(
            name: "idle timeout sends QUIT",
            messages: [],
            events: [.reply("220 mx.test"), .reply(esmtpPlain)],
            written: ["EHLO client.test", "QUIT"],
            outcomes: []
        ),
        StateMachineCase(
            name: "connection closed before the greeting",
            messages: [envelope(["a@d.test"])],
            events: [.closed],
            written: [],
            outcomes: [],
            failure: "connectionClosed: 421 4.4.2 Connection closed by mx.test during the session setup",
            closed: true
        ),
    ]

    @Test(arguments: cases)
    func scriptedSession(_ testCase: StateMachineCase) {
        var client = ScriptedClient(policy: testCase.policy, pipelining: testCase.pipelining, messages: testCase.messages)
        client.run(testCase.events)
        #expect(client.written == testCase.written)
        #expect(client.outcomes == testCase.outcomes)
        #expect(client.failure?.description == testCase.failure)
        #expect(client.closed == testCase.closed)
    }

    @Test
    func timeoutsFollowTheStage() {
        var client = ScriptedClient(pipelining: false, messages: [envelope(["a@d.test"])])
        let timeouts = SMTPClientTimeouts()
        #expect(client.machine.pendingTimeout == timeouts.greeting)
        client.run([.reply("220 mx.test"), .reply(esmtpPlain)])
        #expect(client.machine.pendingTimeout == timeouts.mail)
        client.run([.reply("250 ok")])
        #expect(client.machine.pendingTimeout == timeouts.rcpt)
        client.run([.reply("250 ok")])
        #expect(client.machine.pendingTimeout == timeouts.dataInitiation)
        // Content sending is synchronous in the script: next is the end-of-data wait.
        client.run([.reply("354 go")])
        #expect(client.machine.pendingTimeout == timeouts.dataTermination)
        client.messages = []
        client.run([.reply("250 ok")])
        #expect(client.machine.pendingTimeout == timeouts.command) // QUIT
    }

    @Test
    func dataBlockTimeoutWhileWritingContent() {
        var machine = SMTPClientStateMachine(configuration: SMTPClientConfiguration(localHostname: "c"), remoteHost: "mx")
        _ = machine.connectionEstablished()
        _ = machine.replyReceived(SMTPReply(code: 220, nil, "mx"))
        #expect(machine.replyReceived(SMTPReply(code: 250, nil, lines: ["mx", "PIPELINING"])) == .sessionReady(machine.capabilities))
        #expect(machine.pendingTimeout == SMTPClientTimeouts.defaultIdle)
        _ = machine.startTransaction(envelope(["a@d.test"]))
        _ = machine.replyReceived(SMTPReply(code: 250, nil, "ok"))
        _ = machine.replyReceived(SMTPReply(code: 250, nil, "ok"))
        #expect(machine.replyReceived(SMTPReply(code: 354, nil, "go")) == .sendContent)
        #expect(machine.pendingTimeout == SMTPClientTimeouts.defaultDataBlock)
        guard case .deliveryCompleted(let outcomes, closeConnection: true) = machine.timeoutFired() else {
            Issue.record("expected deferral")
            return
        }
        #expect(outcomes.map(\.status) == [.deferred])
        #expect(outcomes.first?.stage == .endOfData)
        #expect(machine.isClosed)
    }

    @Test
    func idleTimeoutQuits() {
        var client = ScriptedClient(messages: [])
        client.messages = [envelope(["x@d.test"])]
        client.run([.reply("220 mx.test"), .reply(esmtpPipelining), .reply("250 2.1.0 Ok|250 2.1.5 Ok|354 go"), .reply("250 2.0.0 ok")])
        // After the message, the script quits at once; a real handler would wait `idle` first.
        #expect(client.written.last == "QUIT")
        var machine = SMTPClientStateMachine(configuration: SMTPClientConfiguration(localHostname: "c"), remoteHost: "mx")
        _ = machine.connectionEstablished()
        _ = machine.replyReceived(SMTPReply(code: 220, nil, "mx"))
        _ = machine.replyReceived(SMTPReply(code: 250, nil, "mx"))
        #expect(machine.timeoutFired() == .sendCommands([.quit]))
        #expect(machine.timeoutFired() == .closeConnection)
    }
}
