import Logging
import NIOCore
import NIOEmbedded
import SMTPCore
@testable import SMTPNIO
import Testing

/// Greets at once (no identity lookup) and takes every message.
private struct InstantBackend: SMTPServerBackend {
    func cachedIdentity(forClientAddress address: SocketAddress?) -> SMTPIdentityLookup { .known(nil) }
    func identity(forClientAddress address: SocketAddress?) async -> SMTPIdentity? { nil }
    func authenticate(username: String, password: String, clientAddress: SocketAddress?) async -> SMTPIdentity? { nil }
    func commit(_ message: SMTPReceivedMessage, completion: @escaping @Sendable (Result<String, any Error>) -> Void) {
        completion(.success("Q1"))
    }
}

/// The command and data timeouts are deadlines per line (Postfix's `smtpd_per_record_deadline`),
/// driven on an `EmbeddedChannel` whose clock only moves when the test moves it.
@Suite struct SMTPServerDeadlineTests {
    static let timeout = 10

    /// A session on an embedded channel, greeted; timeouts of 10 s.
    private func session() throws -> EmbeddedChannel {
        let limits = SMTPServerLimits(commandTimeout: .seconds(Self.timeout), dataTimeout: .seconds(Self.timeout))
        let configuration = SMTPServerConfiguration(hostname: "smtp.test", limits: limits, requireIdentity: false)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(SMTPServerSessionHandler(
            configuration: configuration, backend: InstantBackend(), registry: SMTPSessionRegistry(limits: limits),
            implicitTLS: false, logger: Logger(label: "test")))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2525)).wait()
        #expect(try output(channel) == ["220 smtp.test ESMTP Tern"])
        return channel
    }

    /// The final lines of the replies written since the last call.
    private func output(_ channel: EmbeddedChannel) throws -> [String] {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text.split(separator: "\r\n").map(String.init).filter { $0.count < 4 || $0.dropFirst(3).first == " " }
    }

    private func send(_ text: String, to channel: EmbeddedChannel) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    /// Sends `text` one octet a second; returns the seconds it took the session to answer
    /// (nil if it never did).
    private func trickle(_ text: String, to channel: EmbeddedChannel) throws -> (seconds: Int, replies: [String])? {
        for (second, octet) in text.utf8.enumerated() {
            try channel.writeInbound(ByteBuffer(bytes: [octet]))
            channel.embeddedEventLoop.advanceTime(by: .seconds(1))
            let replies = try output(channel)
            if !replies.isEmpty { return (second + 1, replies) }
        }
        return nil
    }

    @Test func aCommandLineTrickledOctetByOctetTimesOutAtItsDeadline() throws {
        let channel = try session()
        try send("EHLO client.test\r\n", to: channel)
        _ = try output(channel)
        let answer = try #require(try trickle("NOOP and a line that never ends", to: channel))
        #expect(answer.seconds == Self.timeout)
        #expect(answer.replies == ["421 4.4.2 smtp.test Timeout, closing connection"])
        #expect(!channel.isActive)
    }

    @Test func eachCompleteCommandLineStartsANewDeadline() throws {
        let channel = try session()
        // Five commands 6 s apart: 30 s in all, three times the timeout.
        for _ in 0..<5 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(6))
            try send("NOOP\r\n", to: channel)
            #expect(try output(channel) == ["250 2.0.0 Ok"])
        }
        channel.embeddedEventLoop.advanceTime(by: .seconds(Int64(Self.timeout - 1)))
        #expect(try output(channel).isEmpty)
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try output(channel) == ["421 4.4.2 smtp.test Timeout, closing connection"])
        #expect(!channel.isActive)
    }

    /// Pipelined commands answered at once, then a partial line: its deadline runs from the
    /// last complete line, not from its own first octets.
    @Test func thePartOfALineReadWithTheLineBeforeDoesNotMoveTheDeadline() throws {
        let channel = try session()
        try send("NOOP\r\nNO", to: channel)
        #expect(try output(channel) == ["250 2.0.0 Ok"])
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        try send("O", to: channel)
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        try send("P", to: channel)
        #expect(try output(channel).isEmpty)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try output(channel) == ["421 4.4.2 smtp.test Timeout, closing connection"])
    }

    private func startData(_ channel: EmbeddedChannel) throws {
        try send("EHLO client.test\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n", to: channel)
        #expect(try output(channel).map { String($0.prefix(3)) } == ["250", "250", "250", "354"])
    }

    @Test func aDataLineTrickledOctetByOctetTimesOutAtItsDeadline() throws {
        let channel = try session()
        try startData(channel)
        try send("Subject: slow\r\n\r\n", to: channel)
        let answer = try #require(try trickle("a line of text that never ends", to: channel))
        #expect(answer.seconds == Self.timeout)
        #expect(answer.replies == ["421 4.4.2 smtp.test Timeout, closing connection"])
        #expect(!channel.isActive)
    }

    @Test func eachCompleteDataLineStartsANewDeadline() throws {
        let channel = try session()
        try startData(channel)
        for line in ["Subject: slow\r\n", "\r\n", "one\r\n", "two\r\n", "three\r\n"] {
            channel.embeddedEventLoop.advanceTime(by: .seconds(6))
            try send(line, to: channel)
            #expect(try output(channel).isEmpty)
        }
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        try send(".\r\n", to: channel)
        #expect(try output(channel) == ["250 2.0.0 Ok: queued as Q1"])
        #expect(channel.isActive)
    }
}
