import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization
import Testing
import TernCore
import TernStoreSQLite
@testable import TernEngine

@Suite struct InboundWebhooksTests {
    static let secret = Array("whsec_inbound_test".utf8)

    /// Short delays so that retries happen within a test: 100 ms, 100 ms, then every 200 ms.
    static let fastRetry = RetrySchedule(
        delays: [.milliseconds(100), .milliseconds(100)], repeatingDelay: .milliseconds(200), maximumAge: .seconds(60), jitter: 0)

    static func configuration(timeout: Duration = .seconds(2)) -> InboundWebhooks.Configuration {
        InboundWebhooks.Configuration(
            secret: secret, retry: fastRetry, timeout: timeout, maxConcurrent: 4, pollInterval: .milliseconds(50))
    }

    /// Runs the service on a fresh SQLite store with `messages` committed, calls `body`, then stops it.
    static func withService(
        _ messages: [InboundMessage], configuration: InboundWebhooks.Configuration = configuration(),
        _ body: (SQLiteStore, InboundWebhooks) async throws -> Void
    ) async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: path)
        try await store.commitInbound(messages)
        let service = InboundWebhooks(store: store, configuration: configuration, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            try await body(store, service)
            group.cancelAll()
        }
    }

    /// The webhook state of the one inbound message, once `condition` holds (within `timeout`).
    static func webhook(
        in store: SQLiteStore, within timeout: Duration = .seconds(30), until condition: (InboundSummary.Webhook) -> Bool
    ) async throws -> InboundSummary.Webhook {
        let deadline = ContinuousClock.now + timeout
        while true {
            let webhook = try #require(try await store.inboundMessages(limit: 1, scope: .all).first?.webhook)
            if condition(webhook) { return webhook }
            guard ContinuousClock.now < deadline else {
                Issue.record("webhook never reached the expected state: \(webhook)")
                return webhook
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    @Test func deliveredOnFirstAttemptWithAVerifiableSignature() async throws {
        let server = try await WebhookTestServer.start(answers: [.init(status: 200, body: "ok")])
        defer { server.stop() }
        let message = inboundMessage(alternativeMessage, webhookURL: "http://127.0.0.1:\(server.port)/hooks/inbound?token=t0k")
        try await Self.withService([message]) { store, _ in
            let webhook = try await Self.webhook(in: store) { $0.state != "pending" }
            #expect(webhook.state == "delivered")
            #expect(webhook.attempts == 1)
            #expect(webhook.lastStatus == 200)
            #expect(webhook.lastError == nil)
            #expect(webhook.nextAttemptAt == nil)
        }
        let requests = server.requests
        try #require(requests.count == 1)
        let request = requests[0]
        #expect(request.method == "POST")
        #expect(request.uri == "/hooks/inbound?token=t0k")
        #expect(request.headers["content-type"] == "application/json")
        #expect(request.headers["user-agent"] == "Tern")
        #expect(request.headers["x-tern-event"] == "inbound")
        #expect(request.headers["x-tern-delivery"] == message.id.description)
        let signature = try #require(request.headers["x-tern-signature"])
        try WebhookSignature(secret: Self.secret).verify(signature, body: request.body, now: Date())
        #expect(throws: WebhookSignature.VerificationError.self) {
            try WebhookSignature(secret: Array("another".utf8)).verify(signature, body: request.body, now: Date())
        }
        let payload = try JSONDecoder().decode(InboundPayload.self, from: Data(request.body))
        #expect(payload == InboundPayload(message))
        #expect(payload.subject == "Grüße aus Köln")
    }

    @Test func retriedAfterA500AndDeliveredOnTheSecondAttempt() async throws {
        let server = try await WebhookTestServer.start(answers: [
            .init(status: 500, body: "  database\n  is down  "), .init(status: 204, body: ""),
        ])
        defer { server.stop() }
        let message = inboundMessage("Subject: retry\n\nbody\n", webhookURL: "http://127.0.0.1:\(server.port)/hook")
        try await Self.withService([message]) { store, _ in
            let failed = try await Self.webhook(in: store) { $0.attempts >= 1 }
            if failed.attempts == 1 {
                #expect(failed.state == "pending")
                #expect(failed.lastStatus == 500)
                #expect(failed.lastError == "HTTP 500: database is down")
                #expect(failed.nextAttemptAt != nil)
            }
            let webhook = try await Self.webhook(in: store) { $0.state != "pending" }
            #expect(webhook.state == "delivered")
            #expect(webhook.attempts == 2)
            #expect(webhook.lastStatus == 204)
            #expect(webhook.lastError == nil)
        }
        #expect(server.requests.count == 2)
        // Both attempts post the same body, signed afresh.
        #expect(server.requests.map(\.body).allSatisfy { $0 == server.requests[0].body })
    }

    @Test func serverDownThenUp() async throws {
        // A port held by a socket that is bound but does not listen: connections are refused,
        // and no other process can take the port before the server starts on it (SO_REUSEPORT).
        let reserved = try PortReservation()
        defer { reserved.release() }
        let port = reserved.port
        let message = inboundMessage("Subject: down\n\nbody\n", webhookURL: "http://127.0.0.1:\(port)/hook")
        try await Self.withService([message]) { store, _ in
            let pending = try await Self.webhook(in: store) { $0.attempts >= 1 }
            #expect(pending.state == "pending")
            #expect(pending.lastStatus == nil)
            #expect(pending.lastError == "connection error: Connection refused")
            #expect(pending.lastError.map { $0.count <= InboundWebhooks.errorTextLimit } == true)

            let server = try await WebhookTestServer.start(port: port, answers: [.init(status: 200, body: "")])
            defer { server.stop() }
            let webhook = try await Self.webhook(in: store) { $0.state != "pending" }
            #expect(webhook.state == "delivered")
            #expect(webhook.attempts >= 2)
            #expect(webhook.lastStatus == 200)
            #expect(server.requests.count == 1)
        }
    }

    @Test func pastMaximumAgeGivesUp() async throws {
        let server = try await WebhookTestServer.start(answers: [.init(status: 503, body: "")])
        defer { server.stop() }
        let old = wholeSecondsNow().addingTimeInterval(-61)
        let message = inboundMessage("Subject: old\n\nbody\n", webhookURL: "http://127.0.0.1:\(server.port)/hook", receivedAt: old)
        try await Self.withService([message]) { store, _ in
            let webhook = try await Self.webhook(in: store) { $0.state != "pending" }
            #expect(webhook.state == "gave_up")
            #expect(webhook.attempts == 1)
            #expect(webhook.lastStatus == 503)
            #expect(webhook.lastError == "HTTP 503")
            #expect(webhook.nextAttemptAt == nil)
        }
        #expect(server.requests.count == 1)
    }

    @Test func redirectIsAFailureNamingTheLocation() async throws {
        let server = try await WebhookTestServer.start(answers: [
            .init(status: 302, headers: [("Location", "https://elsewhere.example/hook")], body: "moved"),
            .init(status: 200, body: ""),
        ])
        defer { server.stop() }
        let message = inboundMessage("Subject: moved\n\nbody\n", webhookURL: "http://127.0.0.1:\(server.port)/hook")
        try await Self.withService([message]) { store, _ in
            let webhook = try await Self.webhook(in: store) { $0.attempts >= 1 }
            #expect(webhook.attempts > 1 || webhook.lastStatus == 302)
            let delivered = try await Self.webhook(in: store) { $0.state != "pending" }
            #expect(delivered.state == "delivered")
        }
        // The redirect was not followed: both posts went to the hook itself.
        #expect(server.requests.map(\.uri) == ["/hook", "/hook"])
    }

    @Test func redirectErrorText() {
        let attempt = InboundWebhooks.attempt(
            after: .answered(status: 301, location: "https://elsewhere.example/hook", body: "moved"),
            receivedAt: Date(timeIntervalSince1970: 0), now: Date(timeIntervalSince1970: 0), retry: Self.fastRetry, random: 0)
        #expect(attempt.status == 301)
        #expect(attempt.error == "HTTP 301: redirects are not followed (Location: https://elsewhere.example/hook)")
        #expect(attempt.nextAttemptAt == Date(timeIntervalSince1970: 0.1))
    }

    @Test func longAnswersAreCut() {
        let attempt = InboundWebhooks.attempt(
            after: .answered(status: 400, location: nil, body: String(repeating: "x", count: 5_000)),
            receivedAt: Date(timeIntervalSince1970: 0), now: Date(timeIntervalSince1970: 0), retry: Self.fastRetry, random: 0)
        #expect(attempt.error == "HTTP 400: " + String(repeating: "x", count: InboundWebhooks.responseTextLimit))
    }

    @Test func timeoutIsRetried() async throws {
        let server = try await WebhookTestServer.start(answers: [.init(status: 0, body: ""), .init(status: 200, body: "")])
        defer { server.stop() }
        let message = inboundMessage("Subject: slow\n\nbody\n", webhookURL: "http://127.0.0.1:\(server.port)/hook")
        try await Self.withService([message], configuration: Self.configuration(timeout: .milliseconds(300))) { store, _ in
            let webhook = try await Self.webhook(in: store) { $0.attempts >= 1 }
            if webhook.attempts == 1 {
                #expect(webhook.state == "pending")
                #expect(webhook.lastError == "no answer within 0.3 seconds")
            }
            let delivered = try await Self.webhook(in: store) { $0.state != "pending" }
            #expect(delivered.state == "delivered")
            // Two attempts; more only when a loaded machine makes the answer itself late.
            #expect(delivered.attempts >= 2)
        }
    }

    @Test(arguments: ["ftp://example.org/hook", "mailto:hook@example.org", "/relative/hook", "http:///no-host", "not a url"])
    func nonHTTPURLGivesUpAtOnce(url: String) async throws {
        let message = inboundMessage("Subject: x\n\nbody\n", webhookURL: url)
        try await Self.withService([message]) { store, _ in
            let webhook = try await Self.webhook(in: store) { $0.state != "pending" }
            #expect(webhook.state == "gave_up")
            #expect(webhook.attempts == 1)
            #expect(webhook.lastStatus == nil)
            #expect(webhook.lastError?.hasPrefix("webhook URL is not an absolute http or https URL") == true)
        }
    }

    @Test func wakeStartsAPostBeforeThePoll() async throws {
        let server = try await WebhookTestServer.start(answers: [.init(status: 200, body: "")])
        defer { server.stop() }
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let sqlite = try SQLiteStore(path: path)
        let store = ClaimCountingStore(sqlite)
        var configuration = Self.configuration()
        configuration.pollInterval = .seconds(3600)
        let service = InboundWebhooks(store: store, configuration: configuration, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            // The first read found nothing; the next poll is an hour away.
            #expect(try await poll { store.claims.load(ordering: .relaxed) >= 1 })
            try await sqlite.commitInbound([
                inboundMessage("Subject: woken\n\nbody\n", webhookURL: "http://127.0.0.1:\(server.port)/hook")
            ])
            service.wake()
            let webhook = try await Self.webhook(in: sqlite, within: .seconds(60)) { $0.state != "pending" }
            #expect(webhook.state == "delivered")
            #expect(store.claims.load(ordering: .relaxed) >= 2)
            group.cancelAll()
        }
        try await sqlite.close()
    }

    @Test func postsRunSideBySideUpToTheLimit() async throws {
        // Each answer takes a second, so that the first four posts overlap even when starting
        // them is slowed down by the rest of a parallel test run (300 ms was not always enough on CI).
        let server = try await WebhookTestServer.start(answers: [.init(status: 200, body: "", delay: .seconds(1))])
        defer { server.stop() }
        let messages = (0..<8).map { index in
            inboundMessage("Subject: \(index)\n\nbody\n", webhookURL: "http://127.0.0.1:\(server.port)/hook")
        }
        // A post timeout far above the answer's second: a post slowed down by a busy machine is
        // not retried, so the server sees each message exactly once.
        try await Self.withService(messages, configuration: Self.configuration(timeout: .seconds(60))) { store, _ in
            let deadline = ContinuousClock.now + .seconds(60)
            while try await store.inboundMessages(limit: 10, scope: .all).contains(where: { $0.webhook?.state != "delivered" }),
                ContinuousClock.now < deadline
            {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(server.requests.count == 8)
        // maxConcurrent 4: the server saw four posts at once, never more.
        #expect(server.maxConcurrent == 4)
    }

    @Test func gracefulShutdownEndsRun() async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // The next poll is an hour away: the shutdown must not wait for it.
        var configuration = Self.configuration()
        configuration.pollInterval = .seconds(3600)
        let store = ClaimCountingStore(try SQLiteStore(path: path))
        let service = InboundWebhooks(store: store, configuration: configuration, logger: Logger(label: "test"))
        let group = ServiceGroup(services: [service], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // Once it has read the store it waits for the poll.
            #expect(try await poll { store.claims.load(ordering: .relaxed) >= 1 })
            let stopping = ContinuousClock.now
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            // Not a speed target: far below the poll interval it would otherwise wait out.
            #expect(ContinuousClock.now - stopping < .seconds(60))
        }
    }

    @Test(arguments: [
        // (seconds since arrival at the end of the attempt, next attempt's offset from arrival, or nil to give up)
        (0.0, 60.0), (30.0, 60.0), (60.0, 360.0), (359.9, 360.0), (360.0, 1_260.0),
        (3 * 3600.0, 13_860.0), (13_860.0, 28_260.0), (71 * 3600.0, 258_660.0), (258_660.0, nil), (4 * 86_400.0, nil), (-5.0, 60.0),
    ] as [(Double, Double?)])
    func defaultScheduleIsAnchoredAtArrival(elapsed: Double, next: Double?) {
        let retry = InboundWebhooks.Configuration.defaultRetry
        let arrival = Date(timeIntervalSince1970: 1_000_000)
        let attempt = retry.nextWebhookAttempt(receivedAt: arrival, after: arrival.addingTimeInterval(elapsed), random: 0)
        #expect(attempt.map { $0.timeIntervalSince(arrival) } == next)
    }

    @Test func defaultScheduleKeepsTryingForMoreThanADay() {
        let retry = InboundWebhooks.Configuration.defaultRetry
        let arrival = Date(timeIntervalSince1970: 1_000_000)
        var now = arrival
        var attempts = 1
        while let next = retry.nextWebhookAttempt(receivedAt: arrival, after: now, random: 1) {
            #expect(next > now)
            now = next
            attempts += 1
        }
        #expect(now.timeIntervalSince(arrival) >= 24 * 3600)
        let lastPossible: TimeInterval = 3 * 86_400 + 4 * 3600 * 1.1
        #expect(now.timeIntervalSince(arrival) < lastPossible)
        #expect(attempts == 24)
    }
}

/// A real HTTP/1.1 server on 127.0.0.1 that answers from a script (the last answer repeats)
/// and records every request.
final class WebhookTestServer: Sendable {
    struct Answer: Sendable {
        /// 0: never answer (for timeouts).
        var status: Int
        var headers: [(String, String)] = []
        var body: String
        var delay: Duration = .zero
    }

    struct Request: Sendable {
        var method: String
        var uri: String
        /// Lowercase names.
        var headers: [String: String]
        var body: [UInt8]
    }

    private struct State {
        var answers: [Answer]
        var requests: [Request] = []
        var open = 0
        var maxConcurrent = 0
    }

    private let state: Mutex<State>
    private let channel = Mutex<(any Channel)?>(nil)
    private let boundPort = Mutex(0)

    /// The port it listens on (kept after ``stop()``).
    var port: Int { boundPort.withLock { $0 } }
    var requests: [Request] { state.withLock { $0.requests } }
    /// Most requests that were waiting for their answer at once.
    var maxConcurrent: Int { state.withLock { $0.maxConcurrent } }

    private init(answers: [Answer]) {
        state = Mutex(State(answers: answers))
    }

    static func start(port: Int = 0, answers: [Answer]) async throws -> WebhookTestServer {
        let server = WebhookTestServer(answers: answers)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.Types.SocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(server: server))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        server.boundPort.withLock { $0 = channel.localAddress?.port ?? 0 }
        server.channel.withLock { $0 = channel }
        return server
    }

    /// Stops listening; connections still open close with their clients.
    func stop() {
        let channel = self.channel.withLock { channel in
            defer { channel = nil }
            return channel
        }
        try? channel?.close().wait()
    }

    fileprivate func received(_ request: Request) -> Answer {
        state.withLock { state in
            state.requests.append(request)
            state.open += 1
            state.maxConcurrent = max(state.maxConcurrent, state.open)
            return state.answers.count > 1 ? state.answers.removeFirst() : state.answers.first ?? Answer(status: 200, body: "")
        }
    }

    fileprivate func answered() {
        state.withLock { $0.open -= 1 }
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let server: WebhookTestServer
        var head: HTTPRequestHead?
        var body: [UInt8] = []

        init(server: WebhookTestServer) { self.server = server }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
            case .body(let buffer):
                body += buffer.readableBytesView
            case .end:
                guard let head else { return }
                var headers: [String: String] = [:]
                for (name, value) in head.headers { headers[name.lowercased()] = value }
                let answer = server.received(Request(method: head.method.rawValue, uri: head.uri, headers: headers, body: body))
                guard answer.status != 0 else { return }
                var responseHeaders = HTTPHeaders(answer.headers)
                responseHeaders.add(name: "Content-Length", value: "\(answer.body.utf8.count)")
                let response = HTTPResponseHead(
                    version: head.version, status: HTTPResponseStatus(statusCode: answer.status), headers: responseHeaders)
                let server = self.server
                let context = NIOLoopBound(context, eventLoop: context.eventLoop)
                let handler = NIOLoopBound(self, eventLoop: context.value.eventLoop)
                context.value.eventLoop.scheduleTask(in: TimeAmount(answer.delay)) {
                    server.answered()
                    let context = context.value
                    let handler = handler.value
                    context.write(handler.wrapOutboundOut(.head(response)), promise: nil)
                    context.write(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: answer.body)))), promise: nil)
                    context.writeAndFlush(handler.wrapOutboundOut(.end(nil)), promise: nil)
                }
            }
        }
    }
}

/// An `InboundStore` that counts the reads of due webhooks that have returned.
final class ClaimCountingStore: InboundStore {
    let base: any InboundStore
    let claims = Atomic(0)

    init(_ base: any InboundStore) { self.base = base }

    func claimDueWebhooks(now: Date, limit: Int, leaseUntil: Date) async throws -> [InboundMessage] {
        defer { claims.add(1, ordering: .relaxed) }
        return try await base.claimDueWebhooks(now: now, limit: limit, leaseUntil: leaseUntil)
    }

    func commitInbound(_ messages: [InboundMessage]) async throws { try await base.commitInbound(messages) }
    func pendingReports(limit: Int) async throws -> [InboundMessage] { try await base.pendingReports(limit: limit) }
    func completeReport(_ id: InboundMessageID, outcome: ReportOutcome) async throws {
        try await base.completeReport(id, outcome: outcome)
    }
    func recordWebhookAttempt(_ id: InboundMessageID, _ attempt: WebhookAttempt) async throws {
        try await base.recordWebhookAttempt(id, attempt)
    }
    func inboundMessages(limit: Int, scope: TenantScope) async throws -> [InboundSummary] {
        try await base.inboundMessages(limit: limit, scope: scope)
    }
    func recipients(messageIDHeader: String, limit: Int) async throws -> [RecipientSummary] {
        try await base.recipients(messageIDHeader: messageIDHeader, limit: limit)
    }
}

/// A loopback TCP port bound with SO_REUSEPORT and not listening: connecting to it is
/// refused until a server (also with SO_REUSEPORT) listens on it, and meanwhile no other
/// process can bind it.
struct PortReservation {
    let descriptor: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw PortReservationError() }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(fd, address, length) == 0 && getsockname(fd, address, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            throw PortReservationError()
        }
        descriptor = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func release() { close(descriptor) }

    struct PortReservationError: Error {}
}
