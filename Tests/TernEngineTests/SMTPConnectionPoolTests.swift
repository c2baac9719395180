import Foundation
import Logging
import NIOCore
import NIOPosix
import SMTPCore
import Synchronization
import Testing
import TernCore
import TernDNS
@testable import TernEngine

// MARK: The cache's bookkeeping, without sockets

@Suite struct SMTPConnectionCacheTests {
    typealias Cache = SMTPConnectionCache<String, Int>
    let start = ContinuousClock.now

    func lease(_ connection: Int, _ key: String = "mx", openedAt: Duration = .zero, uses: Int = 1) -> Cache.Lease {
        Cache.Lease(connection: connection, key: key, openedAt: start + openedAt, uses: uses)
    }

    func limits(
        idle: Duration = .seconds(5), uses: Int = 100, lifetime: Duration = .seconds(300), perHop: Int = 20, total: Int = 100
    ) -> SMTPConnectionPool.Configuration {
        SMTPConnectionPool.Configuration(
            idleTimeout: idle, maxMessagesPerConnection: uses, maxLifetime: lifetime, maxIdlePerNextHop: perHop, maxIdle: total)
    }

    @Test func mostRecentlyUsedFirstAndPerNextHop() {
        var cache = Cache(limits: limits())
        #expect(cache.checkIn(lease(1), now: start).kept)
        #expect(cache.checkIn(lease(2), now: start + .seconds(1)).kept)
        #expect(cache.checkIn(lease(3, "other"), now: start + .seconds(1)).kept)
        #expect(cache.idleCount == 3)
        #expect(cache.checkOut("mx", now: start + .seconds(2)).lease?.connection == 2)
        #expect(cache.checkOut("mx", now: start + .seconds(2)).lease?.connection == 1)
        #expect(cache.checkOut("mx", now: start + .seconds(2)).lease == nil)
        #expect(cache.hasIdle("other"))
        #expect(!cache.hasIdle("mx"))
        #expect(cache.idleCount == 1)
    }

    @Test func idleTimeoutAndLifetimeExpire() {
        var cache = Cache(limits: limits(idle: .seconds(5), lifetime: .seconds(60)))
        _ = cache.checkIn(lease(1), now: start)
        _ = cache.checkIn(lease(2, openedAt: .seconds(-58)), now: start + .seconds(1))
        _ = cache.checkIn(lease(3, "other"), now: start + .seconds(4))
        // At 3 s: 2 has been open 61 s.
        #expect(cache.expire(now: start + .seconds(3)) == [2])
        // Taking from "mx" at 6 s finds 1 idle for 6 s: closed, nothing handed out.
        let taken = cache.checkOut("mx", now: start + .seconds(6))
        #expect(taken.lease == nil)
        #expect(taken.close == [1])
        #expect(cache.expire(now: start + .seconds(8)) == [])
        #expect(cache.expire(now: start + .seconds(9)) == [3])
        #expect(cache.idleCount == 0)
    }

    @Test func useAndTimeLimitsRefuseTheCheckIn() {
        var cache = Cache(limits: limits(uses: 3, lifetime: .seconds(60)))
        #expect(cache.checkIn(lease(1, uses: 2), now: start).kept)
        let spent = cache.checkIn(lease(2, uses: 3), now: start)
        #expect(!spent.kept && spent.close == [2])
        let old = cache.checkIn(lease(3, openedAt: .zero), now: start + .seconds(60))
        #expect(!old.kept && old.close == [3])
        #expect(cache.idleCount == 1)
    }

    @Test func fullNextHopAndFullCachePushOutTheLeastRecentlyUsed() {
        var cache = Cache(limits: limits(perHop: 2, total: 3))
        _ = cache.checkIn(lease(1, "a"), now: start)
        _ = cache.checkIn(lease(2, "a"), now: start + .seconds(1))
        let third = cache.checkIn(lease(3, "a"), now: start + .seconds(2))
        #expect(third.kept && third.close == [1])
        _ = cache.checkIn(lease(4, "b"), now: start + .seconds(3))
        let fifth = cache.checkIn(lease(5, "c"), now: start + .seconds(4))
        #expect(fifth.kept && fifth.close == [2])
        #expect(cache.idleCount == 3)
        #expect(cache.checkOut("a", now: start + .seconds(4)).lease?.connection == 3)
    }

    @Test func shutDownReturnsEverythingAndKeepsNothing() {
        var cache = Cache(limits: limits())
        _ = cache.checkIn(lease(1, "a"), now: start)
        _ = cache.checkIn(lease(2, "b"), now: start)
        #expect(cache.shutDown().sorted() == [1, 2])
        #expect(cache.idleCount == 0)
        let late = cache.checkIn(lease(3, "a"), now: start)
        #expect(!late.kept && late.close == [3])
        #expect(cache.checkOut("a", now: start).lease == nil)
    }

    @Test func reuseNeedsRoomAndMoreThanOneMessage() {
        #expect(SMTPConnectionPool.Configuration().allowsReuse)
        #expect(!limits(uses: 1).allowsReuse)
        #expect(!limits(perHop: 0).allowsReuse)
        #expect(SMTPConnectionPool.Configuration(idleTimeout: .seconds(5)).sweepInterval == .seconds(1))
        #expect(SMTPConnectionPool.Configuration(idleTimeout: .milliseconds(200)).sweepInterval == .milliseconds(100))
    }
}

// MARK: Which outcomes keep a session, and which allow a second try

@Suite struct SMTPSessionReuseDecisionTests {
    static func outcome(
        _ status: SMTPDeliveryOutcome.Status, _ code: Int, _ stage: SMTPDeliveryOutcome.Stage, remote: Bool
    ) -> SMTPDeliveryOutcome {
        SMTPDeliveryOutcome(
            recipient: SMTPMailbox(localPart: "a", domain: "d.test"), status: status,
            reply: SMTPReply(code: code, nil, "text"), isRemoteReply: remote, stage: stage, remoteHost: "mx", tlsUsed: false)
    }

    @Test(arguments: [
        // Lost while waiting for MAIL or RCPT replies, or 421 to them: nothing sent yet.
        ([outcome(.deferred, 421, .mail, remote: false)], true),
        ([outcome(.deferred, 421, .mail, remote: true)], true),
        ([outcome(.deferred, 421, .rcpt, remote: false), outcome(.deferred, 421, .rcpt, remote: false)], true),
        ([outcome(.deferred, 421, .beforeMail, remote: false)], true),
        // The server's own verdicts stand.
        ([outcome(.deferred, 451, .mail, remote: true)], false),
        ([outcome(.failed, 550, .rcpt, remote: true), outcome(.deferred, 421, .rcpt, remote: false)], false),
        // At or after DATA the server may have the message: never twice.
        ([outcome(.deferred, 421, .data, remote: false)], false),
        ([outcome(.deferred, 421, .endOfData, remote: false)], false),
        ([outcome(.sent, 250, .endOfData, remote: true)], false),
        ([], false),
    ] as [([SMTPDeliveryOutcome], Bool)])
    func retryOnNewConnection(outcomes: [SMTPDeliveryOutcome], expected: Bool) {
        #expect(SMTPTransport.mayRetryOnNewConnection(after: outcomes) == expected)
    }

    @Test func keptOnlyAfterASuccessfulEndOfData() {
        #expect(SMTPTransport.mayKeepSession(after: [Self.outcome(.sent, 250, .endOfData, remote: true)]))
        #expect(SMTPTransport.mayKeepSession(after: [
            Self.outcome(.failed, 550, .rcpt, remote: true), Self.outcome(.sent, 250, .endOfData, remote: true),
        ]))
        #expect(!SMTPTransport.mayKeepSession(after: [Self.outcome(.failed, 554, .endOfData, remote: true)]))
        #expect(!SMTPTransport.mayKeepSession(after: [Self.outcome(.deferred, 421, .mail, remote: true)]))
        #expect(!SMTPTransport.mayKeepSession(after: [Self.outcome(.failed, 550, .rcpt, remote: true)]))
    }
}

// MARK: Real sessions with a loopback peer

/// A receiving SMTP server on loopback that counts what the cache must save: connections
/// accepted, messages received, QUITs. It can close its idle sessions, answer the next MAIL on a
/// session that already took a message with 421, or drop such a session at the end of data.
final class LoopbackSMTPPeer: Sendable {
    struct State {
        var accepted = 0
        var quits = 0
        /// The recipients of every message answered with 250.
        var messages: [[String]] = []
        /// Messages whose content arrived but whose connection was dropped before the reply.
        var dropped = 0
        var sessions: [ObjectIdentifier: any Channel] = [:]
        var refuseNextReusedMail = false
        var dropNextReusedData = false
    }

    let state = Mutex(State())
    private let listener = Mutex<(any Channel)?>(nil)

    var port: Int { listener.withLock { $0?.localAddress?.port } ?? 0 }

    static func start(group: any EventLoopGroup) async throws -> LoopbackSMTPPeer {
        let peer = LoopbackSMTPPeer()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(LoopbackSMTPSession(peer: peer))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        peer.listener.withLock { $0 = channel }
        return peer
    }

    /// Closes every open session at once, without a word (an idle timeout on the server side).
    func closeSessions() async {
        let open = state.withLock { Array($0.sessions.values) }
        for channel in open { try? await channel.close() }
    }

    func stop() async {
        await closeSessions()
        let channel = listener.withLock { $0 }
        try? await channel?.close()
    }

    var snapshot: State { state.withLock { $0 } }

    /// Waits until `condition` holds (the peer sees QUITs after the client returned).
    func wait(until condition: (State) -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while !condition(snapshot) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// One session of `LoopbackSMTPPeer`: EHLO with PIPELINING, every recipient accepted.
final class LoopbackSMTPSession: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let peer: LoopbackSMTPPeer
    private var input = ByteBuffer()
    private var inData = false
    private var recipients: [String] = []
    private var delivered = 0
    private var done = false

    init(peer: LoopbackSMTPPeer) {
        self.peer = peer
    }

    func channelActive(context: ChannelHandlerContext) {
        let id = ObjectIdentifier(context.channel)
        let channel = context.channel
        peer.state.withLock {
            $0.accepted += 1
            $0.sessions[id] = channel
        }
        reply(context, "220 peer.test ESMTP")
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let id = ObjectIdentifier(context.channel)
        peer.state.withLock { $0.sessions[id] = nil }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        input.writeBuffer(&bytes)
        while !done, let end = input.readableBytesView.firstRange(of: [13, 10]) {
            let length = end.lowerBound - input.readerIndex
            let line = input.readString(length: length) ?? ""
            input.moveReaderIndex(forwardBy: 2)
            handle(line, context)
        }
        input.discardReadBytes()
    }

    private func handle(_ line: String, _ context: ChannelHandlerContext) {
        if inData {
            guard line == "." else { return }
            inData = false
            if delivered > 0 && peer.state.withLock({ state in
                defer { state.dropNextReusedData = false }
                return state.dropNextReusedData
            }) {
                peer.state.withLock { $0.dropped += 1 }
                close(context)
                return
            }
            delivered += 1
            let recipients = self.recipients
            peer.state.withLock { $0.messages.append(recipients) }
            reply(context, "250 2.0.0 Ok: queued")
            return
        }
        switch line.prefix(4).uppercased() {
        case "EHLO":
            reply(context, "250-peer.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES")
        case "MAIL":
            if delivered > 0 && peer.state.withLock({ state in
                defer { state.refuseNextReusedMail = false }
                return state.refuseNextReusedMail
            }) {
                reply(context, "421 4.4.2 peer.test idle too long, closing")
                close(context)
                return
            }
            recipients = []
            reply(context, "250 2.1.0 Ok")
        case "RCPT":
            let address = line.split(separator: "<", maxSplits: 1).last.map { $0.prefix { $0 != ">" } } ?? ""
            recipients.append(String(address))
            reply(context, "250 2.1.5 Ok")
        case "DATA":
            guard !recipients.isEmpty else { return reply(context, "554 5.5.1 No valid recipients") }
            inData = true
            reply(context, "354 End data with <CR><LF>.<CR><LF>")
        case "RSET", "NOOP":
            reply(context, "250 2.0.0 Ok")
        case "QUIT":
            peer.state.withLock { $0.quits += 1 }
            reply(context, "221 2.0.0 Bye")
            close(context)
        default:
            reply(context, "502 5.5.2 Error: command not recognized")
        }
    }

    private func reply(_ context: ChannelHandlerContext, _ text: String) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text + "\r\n")), promise: nil)
    }

    private func close(_ context: ChannelHandlerContext) {
        done = true
        context.close(promise: nil)
    }
}

/// Routes never look names up.
struct NoDNS: DNSResolving {
    func lookup(_ name: DNSName, _ type: DNSRecordType) async throws(DNSError) -> DNSAnswer {
        throw DNSError(.refused, name: name.description, type: type, detail: "no DNS in this test")
    }
}

@Suite(.timeLimit(.minutes(1)))
struct SMTPConnectionReuseSocketTests {
    static let logger = Logger(label: "tern.delivery.test")

    func withPeer(
        _ reuse: SMTPConnectionPool.Configuration = SMTPConnectionPool.Configuration(),
        _ body: (LoopbackSMTPPeer, SMTPTransport, SMTPConnectionPool) async throws -> Void
    ) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let peer = try await LoopbackSMTPPeer.start(group: group)
        let transport = SMTPTransport(
            configuration: SMTPTransport.Configuration(
                heloName: "client.tern.test", routes: ["*": DeliveryRoute(host: "127.0.0.1", port: peer.port)],
                connectTimeout: .seconds(5), connectionReuse: reuse),
            resolver: NoDNS(), group: group, logger: Self.logger)
        let pool = try #require(transport.connectionPool)
        do {
            try await body(peer, transport, pool)
        } catch {
            await pool.shutdown()
            await peer.stop()
            try await group.shutdownGracefully()
            throw error
        }
        await pool.shutdown()
        await peer.stop()
        try await group.shutdownGracefully()
    }

    static func request(_ local: String) -> DeliveryRequest {
        let message = MessageID.random()
        let recipient = DueRecipient(
            id: .random(), messageID: message, address: "\(local)@d.test", mailFrom: "sender@tern.test", attempts: 0,
            queuedAt: Date(), nextAttemptAt: Date(), eightBitMIME: false, smtpUTF8: false, size: 30)
        return DeliveryRequest(
            messageID: message, reversePath: .mailbox(SMTPMailbox(localPart: "sender", domain: "tern.test")), destination: "d.test", recipients: [recipient],
            content: .bytes(Array("Subject: reuse\r\n\r\nHello\r\n".utf8)), eightBitMIME: false, smtpUTF8: false)
    }

    /// Delivers to `local@d.test` and returns the one outcome's kind.
    static func deliver(_ transport: SMTPTransport, _ local: String) async -> String {
        let outcomes = await transport.deliver(request(local))
        switch outcomes.values.first {
        case .sent?: return "sent"
        case .failed?: return "failed"
        case .deferred?: return "deferred"
        case nil: return "none"
        }
    }

    /// The pool holds an idle session to the peer: the next job is sent on it, with no new connection.
    static func expectIdleSessionReused(
        _ peer: LoopbackSMTPPeer, _ transport: SMTPTransport, sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        let accepted = peer.snapshot.accepted
        #expect(await deliver(transport, "next") == "sent", sourceLocation: sourceLocation)
        #expect(peer.snapshot.accepted == accepted, "a new connection: no idle session was held", sourceLocation: sourceLocation)
    }

    @Test func sequentialJobsShareOneConnection() async throws {
        try await withPeer { peer, transport, pool in
            #expect(await Self.deliver(transport, "one") == "sent")
            #expect(await Self.deliver(transport, "two") == "sent")
            #expect(await Self.deliver(transport, "three") == "sent")
            #expect(peer.snapshot.accepted == 1)
            #expect(peer.snapshot.messages == [["one@d.test"], ["two@d.test"], ["three@d.test"]])
            #expect(peer.snapshot.quits == 0)
            await Self.expectIdleSessionReused(peer, transport)
        }
    }

    @Test func reuseLimitHonoured() async throws {
        try await withPeer(SMTPConnectionPool.Configuration(maxMessagesPerConnection: 2)) { peer, transport, pool in
            for index in 0..<5 {
                #expect(await Self.deliver(transport, "r\(index)") == "sent")
            }
            try await peer.wait { $0.quits == 2 }
            // 2 + 2 + 1 messages: the first two sessions were QUIT after their second message.
            #expect(peer.snapshot.accepted == 3)
            #expect(peer.snapshot.quits == 2)
            #expect(peer.snapshot.messages.count == 5)
            await Self.expectIdleSessionReused(peer, transport)
        }
    }

    @Test func sessionClosedByTheServerWhileIdleIsReplaced() async throws {
        try await withPeer { peer, transport, pool in
            #expect(await Self.deliver(transport, "first") == "sent")
            await peer.closeSessions()
            try await peer.wait { $0.sessions.isEmpty }
            try await Task.sleep(for: .milliseconds(50))
            #expect(await Self.deliver(transport, "second") == "sent")
            #expect(peer.snapshot.accepted == 2)
            #expect(peer.snapshot.messages == [["first@d.test"], ["second@d.test"]])
            await Self.expectIdleSessionReused(peer, transport)
        }
    }

    @Test func reusedSessionRefusedWith421IsRetriedOnceOnANewConnection() async throws {
        try await withPeer { peer, transport, pool in
            #expect(await Self.deliver(transport, "first") == "sent")
            peer.state.withLock { $0.refuseNextReusedMail = true }
            #expect(await Self.deliver(transport, "second") == "sent")
            #expect(peer.snapshot.accepted == 2)
            // Exactly one delivery of the second message.
            #expect(peer.snapshot.messages == [["first@d.test"], ["second@d.test"]])
            await Self.expectIdleSessionReused(peer, transport)
        }
    }

    @Test func reusedSessionLostAfterTheContentIsNotRetried() async throws {
        try await withPeer { peer, transport, pool in
            #expect(await Self.deliver(transport, "first") == "sent")
            peer.state.withLock { $0.dropNextReusedData = true }
            // The server has the content and no reply came: deferred, never sent twice.
            #expect(await Self.deliver(transport, "second") == "deferred")
            #expect(peer.snapshot.accepted == 1)
            #expect(peer.snapshot.dropped == 1)
            #expect(peer.snapshot.messages == [["first@d.test"]])
            // The lost session was not kept: the next job connects anew.
            #expect(await Self.deliver(transport, "third") == "sent")
            #expect(peer.snapshot.accepted == 2)
        }
    }

    @Test func idleTimeoutQuitsTheSession() async throws {
        try await withPeer(SMTPConnectionPool.Configuration(idleTimeout: .milliseconds(200))) { peer, transport, pool in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await pool.run() }
                let start = ContinuousClock.now
                #expect(await Self.deliver(transport, "one") == "sent")
                try await peer.wait { $0.quits == 1 && $0.sessions.isEmpty }
                #expect(peer.snapshot.quits == 1)
                #expect(peer.snapshot.sessions.isEmpty)
                // Held while idle, not quit at once as when reuse is off.
                #expect(ContinuousClock.now - start >= .milliseconds(200))
                // The next job opens a new session.
                #expect(await Self.deliver(transport, "two") == "sent")
                #expect(peer.snapshot.accepted == 2)
                group.cancelAll()
            }
        }
    }

    @Test func shutdownQuitsIdleSessionsAndKeepsNoneAfterwards() async throws {
        try await withPeer { peer, transport, pool in
            async let first = Self.deliver(transport, "a")
            async let second = Self.deliver(transport, "b")
            #expect(await [first, second] == ["sent", "sent"])
            #expect(peer.snapshot.accepted == 2)
            #expect(peer.snapshot.sessions.count == 2 && peer.snapshot.quits == 0)
            await pool.shutdown()
            #expect(peer.snapshot.quits == 2)
            // After shutdown a job still delivers, on a session QUIT at once.
            #expect(await Self.deliver(transport, "c") == "sent")
            #expect(peer.snapshot.accepted == 3)
            #expect(peer.snapshot.quits == 3)
        }
    }

    @Test func noReuseWhenDisabled() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let peer = try await LoopbackSMTPPeer.start(group: group)
        let transport = SMTPTransport(
            configuration: SMTPTransport.Configuration(
                heloName: "client.tern.test", routes: ["*": DeliveryRoute(host: "127.0.0.1", port: peer.port)],
                connectionCache: false),
            resolver: NoDNS(), group: group, logger: Self.logger)
        #expect(transport.connectionPool == nil)
        #expect(await Self.deliver(transport, "one") == "sent")
        #expect(await Self.deliver(transport, "two") == "sent")
        #expect(peer.snapshot.accepted == 2)
        #expect(peer.snapshot.quits == 2)
        await peer.stop()
        try await group.shutdownGracefully()
    }
}
