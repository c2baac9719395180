import Dispatch
import Logging
import NIOCore
import NIOPosix
import SMTPCore
import SMTPNIO
import Synchronization
import Testing

/// A backend that accepts alice/secret, binds no identity, and stores messages in memory.
final class MemoryBackend: SMTPServerBackend {
    let messages = Mutex<[SMTPReceivedMessage]>([])
    let commitDelay: Duration

    init(commitDelay: Duration = .milliseconds(50)) {
        self.commitDelay = commitDelay
    }

    func identity(forClientAddress address: SocketAddress?) async -> SMTPIdentity? { nil }

    func authenticate(username: String, password: String, clientAddress: SocketAddress?) async -> SMTPIdentity? {
        try? await Task.sleep(for: .milliseconds(20))
        return username == "alice" && password == "secret" ? SMTPIdentity(credentialName: "alice", method: .authPlain) : nil
    }

    /// Answers after `commitDelay`, from another thread, as a store's writer would.
    func commit(_ message: SMTPReceivedMessage, completion: @escaping @Sendable (Result<String, any Error>) -> Void) {
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(commitDelay / .nanoseconds(1)))) {
            let queueID = self.messages.withLock { messages in
                messages.append(message)
                return "Q\(messages.count)"
            }
            completion(.success(queueID))
        }
    }
}

/// A raw client: writes bytes, reads complete replies.
struct RawClient {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>

    static func connect(to address: SocketAddress, group: any EventLoopGroup) async throws -> RawClient {
        let channel = try await ClientBootstrap(group: group).connect(to: address) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        return RawClient(channel: channel)
    }
}

/// Reads until `count` complete replies have arrived (or the connection closes); returns their
/// final lines, e.g. `"250 2.0.0 Ok"`.
func readReplies(
    _ count: Int, from iterator: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, pending: inout String
) async throws -> [String] {
    var replies: [String] = []
    while replies.count < count {
        while let range = pending.firstRange(of: "\r\n") {
            let line = String(pending[..<range.lowerBound])
            pending = String(pending[range.upperBound...])
            let bytes = Array(line.utf8)
            if bytes.count >= 4, bytes[3] == UInt8(ascii: " ") || bytes.count == 3 {
                replies.append(line)
                if replies.count == count { return replies }
            }
        }
        guard let buffer = try await iterator.next() else { return replies }
        pending += String(buffer: buffer)
    }
    return replies
}

func withServer(
    configuration: SMTPServerConfiguration,
    backend: MemoryBackend = MemoryBackend(),
    _ body: (SMTPServer, SocketAddress, any EventLoopGroup) async throws -> Void
) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let server = SMTPServer(configuration: configuration, backend: backend, group: group, logger: Logger(label: "test"))
    let addresses = try await server.bind([SMTPListenerAddress(host: "127.0.0.1", port: 0)])
    let address = try #require(addresses.first)
    do {
        try await body(server, address, group)
    } catch {
        await server.shutdownGracefully(timeout: .seconds(1))
        try await group.shutdownGracefully()
        throw error
    }
    await server.shutdownGracefully(timeout: .seconds(1))
    try await group.shutdownGracefully()
}

let loopbackSubmission = SMTPServerConfiguration(hostname: "smtp.test", allowInsecureAuth: true, requireIdentity: true)

@Suite(.timeLimit(.minutes(1)))
struct SMTPServerSocketTests {
    @Test
    func pipelinedSubmission() async throws {
        let backend = MemoryBackend()
        try await withServer(configuration: loopbackSubmission, backend: backend) { _, address, group in
            let client = try await RawClient.connect(to: address, group: group)
            try await client.channel.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                var pending = ""
                let greeting = try await readReplies(1, from: &iterator, pending: &pending)
                #expect(greeting == ["220 smtp.test ESMTP Tern"])
                try await outbound.write(ByteBuffer(string:
                    "EHLO client\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<a@b.example>\r\n"
                    + "RCPT TO:<r1@d.example>\r\nRCPT TO:<bad>\r\nRCPT TO:<r2@d.example>\r\nDATA\r\n"))
                let replies = try await readReplies(7, from: &iterator, pending: &pending)
                #expect(replies.map { String($0.prefix(9)) } == [
                    "250 AUTH ", "235 2.7.0", "250 2.1.0", "250 2.1.5", "501 5.1.3", "250 2.1.5", "354 End d",
                ])
                try await outbound.write(ByteBuffer(string: "Subject: hi\r\n\r\n..dot\r\n.\r\nNOOP\r\nQUIT\r\n"))
                let end = try await readReplies(3, from: &iterator, pending: &pending)
                #expect(end == ["250 2.0.0 Ok: queued as Q1", "250 2.0.0 Ok", "221 2.0.0 Bye"])
            }
        }
        let message = try #require(backend.messages.withLock { $0.first })
        #expect(message.reversePath == .mailbox(SMTPMailbox(localPart: "a", domain: "b.example")))
        #expect(message.recipients == [SMTPMailbox(localPart: "r1", domain: "d.example"), SMTPMailbox(localPart: "r2", domain: "d.example")])
        #expect(message.identity?.credentialName == "alice")
        #expect(message.protocolName == "ESMTPA")
        #expect(String(buffer: message.content) == "Subject: hi\r\n\r\n.dot\r\n")
    }

    /// Input keeps being read while the backend commits, up to a bound: more pipelined input
    /// than that (here 160 KB of NOOPs sent behind the end of data) is read once the commit
    /// is answered, and every command is answered in order.
    @Test
    func inputPipelinedBehindACommitBeyondTheBufferBound() async throws {
        let backend = MemoryBackend(commitDelay: .milliseconds(300))
        try await withServer(configuration: loopbackSubmission, backend: backend) { _, address, group in
            let client = try await RawClient.connect(to: address, group: group)
            try await client.channel.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                var pending = ""
                _ = try await readReplies(1, from: &iterator, pending: &pending)
                try await outbound.write(ByteBuffer(string:
                    "EHLO client\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<r@d.example>\r\nDATA\r\n"))
                #expect(try await readReplies(5, from: &iterator, pending: &pending).last?.hasPrefix("354") == true)
                let noops = 320
                let noop = "NOOP " + String(repeating: "x", count: 495) + "\r\n"
                try await outbound.write(ByteBuffer(string:
                    "Subject: hi\r\n\r\nbody\r\n.\r\n" + String(repeating: noop, count: noops) + "QUIT\r\n"))
                let replies = try await readReplies(noops + 2, from: &iterator, pending: &pending)
                #expect(replies.first == "250 2.0.0 Ok: queued as Q1")
                #expect(replies.dropFirst().prefix(noops).allSatisfy { $0 == "250 2.0.0 Ok" })
                #expect(replies.count == noops + 2)
                #expect(replies.last == "221 2.0.0 Bye")
            }
        }
        #expect(backend.messages.withLock { $0.count } == 1)
    }

    @Test
    func refusesAuthBeforeTLSWithoutLoopbackOverride() async throws {
        let configuration = SMTPServerConfiguration(hostname: "smtp.test", allowInsecureAuth: false)
        try await withServer(configuration: configuration) { _, address, group in
            let client = try await RawClient.connect(to: address, group: group)
            try await client.channel.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                var pending = ""
                _ = try await readReplies(1, from: &iterator, pending: &pending)
                try await outbound.write(ByteBuffer(string: "EHLO c\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<a@b.example>\r\n"))
                let replies = try await readReplies(3, from: &iterator, pending: &pending)
                #expect(replies.map { String($0.prefix(10)) } == ["250 CHUNKI", "538 5.7.11", "530 5.7.0 "])
            }
        }
    }

    @Test
    func limitsConnectionsPerClient() async throws {
        var configuration = loopbackSubmission
        configuration.limits.maxConnectionsPerClient = 1
        try await withServer(configuration: configuration) { _, address, group in
            let first = try await RawClient.connect(to: address, group: group)
            try await first.channel.executeThenClose { inbound, _ in
                var iterator = inbound.makeAsyncIterator()
                var pending = ""
                #expect(try await readReplies(1, from: &iterator, pending: &pending).first?.hasPrefix("220") == true)
                let second = try await RawClient.connect(to: address, group: group)
                try await second.channel.executeThenClose { inbound2, _ in
                    var iterator2 = inbound2.makeAsyncIterator()
                    var pending2 = ""
                    let refused = try await readReplies(1, from: &iterator2, pending: &pending2)
                    #expect(refused.first?.hasPrefix("421 4.7.0") == true)
                    #expect(try await iterator2.next() == nil)
                }
            }
        }
    }

    @Test
    func shutdownClosesIdleSessions() async throws {
        try await withServer(configuration: loopbackSubmission) { server, address, group in
            let client = try await RawClient.connect(to: address, group: group)
            try await client.channel.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                var pending = ""
                _ = try await readReplies(1, from: &iterator, pending: &pending)
                try await outbound.write(ByteBuffer(string: "EHLO c\r\n"))
                _ = try await readReplies(1, from: &iterator, pending: &pending)
                async let stopped: Void = server.shutdownGracefully(timeout: .seconds(5))
                let replies = try await readReplies(1, from: &iterator, pending: &pending)
                #expect(replies == ["421 4.3.2 Server shutting down"])
                await stopped
            }
        }
    }
}
