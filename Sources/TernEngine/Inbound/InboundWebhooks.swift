import AsyncHTTPClient
import Foundation
public import Logging
import NIOCore
public import ServiceLifecycle
import Synchronization
public import TernCore

/// Posts inbound mail to its route's webhook, at least once: reads what is due from the
/// store, posts each message's ``InboundPayload`` signed with ``WebhookSignature``, and
/// records every attempt. A 2xx answer delivers; anything else (another status, a
/// redirect, a timeout, a connection that fails) is tried again by ``Configuration/retry``
/// until the message is `maximumAge` old, then given up.
///
/// Posts run side by side up to ``Configuration/maxConcurrent``; the store is read every
/// ``Configuration/pollInterval`` and whenever ``wake()`` is called. On shutdown, posts
/// under way are cancelled and not recorded, so they are posted again on the next start:
/// receivers deduplicate by `X-Tern-Delivery`.
///
/// - SeeAlso: RFC 9110 §15 (status codes), §15.4 (redirection, not followed here)
public final class InboundWebhooks: Service, Sendable {
    public struct Configuration: Sendable {
        /// The HMAC key of `X-Tern-Signature`.
        public var secret: [UInt8]
        /// When failed posts are tried again, and until when. The schedule is anchored at the
        /// message's arrival (see ``RetrySchedule/nextWebhookAttempt(receivedAt:after:random:)``).
        public var retry: RetrySchedule
        /// How long one post may take in all: connecting, sending, and the answer's head.
        public var timeout: Duration
        /// Posts under way at most, over all webhooks.
        public var maxConcurrent: Int
        /// How often the store is read when nothing calls ``InboundWebhooks/wake()``.
        public var pollInterval: Duration
        /// The largest attachment posted with its content (see ``InboundPayload``).
        public var maxAttachmentContentBytes: Int

        /// 1m, 5m, 15m, 30m, 1h, 2h, then every 4h, for 3 days after arrival: a receiver that is
        /// down for a day or a weekend still gets its mail.
        public static let defaultRetry = RetrySchedule(
            delays: [.seconds(60), .seconds(5 * 60), .seconds(15 * 60), .seconds(30 * 60), .seconds(60 * 60), .seconds(2 * 60 * 60)],
            repeatingDelay: .seconds(4 * 60 * 60), maximumAge: .seconds(3 * 24 * 60 * 60), jitter: 0.1)
        public static let defaultTimeout: Duration = .seconds(30)
        public static let defaultMaxConcurrent = 8
        public static let defaultPollInterval: Duration = .seconds(1)

        public init(
            secret: [UInt8],
            retry: RetrySchedule = Configuration.defaultRetry,
            timeout: Duration = Configuration.defaultTimeout,
            maxConcurrent: Int = Configuration.defaultMaxConcurrent,
            pollInterval: Duration = Configuration.defaultPollInterval,
            maxAttachmentContentBytes: Int = InboundPayload.defaultMaxAttachmentContentBytes
        ) {
            precondition(timeout > .zero, "timeout must be positive")
            precondition(maxConcurrent >= 1, "maxConcurrent must be at least 1")
            precondition(pollInterval > .zero, "pollInterval must be positive")
            precondition(maxAttachmentContentBytes >= 0, "maxAttachmentContentBytes must not be negative")
            self.secret = secret
            self.retry = retry
            self.timeout = timeout
            self.maxConcurrent = maxConcurrent
            self.pollInterval = pollInterval
            self.maxAttachmentContentBytes = maxAttachmentContentBytes
        }
    }

    /// Sent as `User-Agent`.
    static let userAgent = "Tern"
    /// Most characters of an answer's body kept in the recorded error.
    static let responseTextLimit = 200
    /// Most characters of a recorded error.
    static let errorTextLimit = 300

    private let store: any InboundStore
    private let configuration: Configuration
    private let logger: Logger
    private let signature: WebhookSignature
    private let wakeUp = WakeSignal()

    public init(store: any InboundStore, configuration: Configuration, logger: Logger) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.signature = WebhookSignature(secret: configuration.secret)
    }

    /// Reads the store now rather than at the next poll; intake calls it after it committed
    /// inbound mail with a webhook. Never waits.
    public func wake() {
        wakeUp.signal()
    }

    /// Posts until graceful shutdown (or cancellation), then closes the HTTP client.
    public func run() async throws {
        let client = HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: Self.clientConfiguration(configuration),
            backgroundActivityLogger: logger)
        await withGracefulShutdownHandler {
            await postLoop(client)
        } onGracefulShutdown: {
            self.wakeUp.signal()
        }
        try await client.shutdown()
    }

    static func clientConfiguration(_ configuration: Configuration) -> HTTPClient.Configuration {
        var client = HTTPClient.Configuration()
        client.redirectConfiguration = .disallow
        client.decompression = .disabled
        client.timeout = HTTPClient.Configuration.Timeout(connect: TimeAmount(configuration.timeout), read: TimeAmount(configuration.timeout))
        client.connectionPool = HTTPClient.Configuration.ConnectionPool(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: configuration.maxConcurrent)
        // A refused connection fails the post at once with its reason; the retry schedule,
        // not the client, decides when to try again.
        client.connectionPool.retryConnectionEstablishment = false
        return client
    }

    // MARK: - The loop

    private enum Event: Sendable {
        /// A post ended; nil when it was cancelled (nothing to record).
        case posted(InboundMessageID, WebhookAttempt?)
        case timer
    }

    private func postLoop(_ client: HTTPClient) async {
        await withTaskGroup(of: Event.self) { group in
            var inFlight: Set<InboundMessageID> = []
            // Attempts the store could not take: kept and written again before the next read,
            // and their messages not posted again meanwhile.
            var unrecorded: [InboundMessageID: WebhookAttempt] = [:]
            var timerRunning = false
            var look = true
            var moreDue = false
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                if look, inFlight.count < configuration.maxConcurrent {
                    look = false
                    for (id, attempt) in unrecorded {
                        if await record(id, attempt) { unrecorded[id] = nil }
                    }
                    // Claim only what can start now: a claimed message is not due again before
                    // its lease ends. (Messages in flight or with an attempt not yet recorded
                    // are claimed already; one found again after its lease is left alone.)
                    let free = configuration.maxConcurrent - inFlight.count
                    let due = await dueMessages(limit: free)
                    moreDue = due.count == free
                    for message in due {
                        guard !inFlight.contains(message.id), unrecorded[message.id] == nil else { continue }
                        inFlight.insert(message.id)
                        group.addTask { .posted(message.id, await self.attempt(message, client: client)) }
                    }
                }
                if !timerRunning {
                    timerRunning = true
                    let wakeUp = self.wakeUp
                    let interval = configuration.pollInterval
                    group.addTask {
                        await wakeUp.wait(upTo: interval)
                        return .timer
                    }
                }
                guard let event = await group.next() else { break }
                switch event {
                case .posted(let id, let attempt):
                    inFlight.remove(id)
                    if let attempt, !(await record(id, attempt)) { unrecorded[id] = attempt }
                    if moreDue { look = true }
                case .timer:
                    timerRunning = false
                    look = true
                }
            }
            // Posts under way end cancelled; what ended before is still recorded.
            group.cancelAll()
            while let event = await group.next() {
                if case .posted(let id, let attempt?) = event { _ = await record(id, attempt) }
            }
        }
    }

    private func dueMessages(limit: Int) async -> [InboundMessage] {
        do {
            // Claimed for twice the post timeout: the attempt is recorded well before then,
            // and a node that died mid-post leaves the message to another one after it.
            let now = Date()
            return try await store.claimDueWebhooks(
                now: now, limit: limit, leaseUntil: now.addingTimeInterval(2 * configuration.timeout.schedulerTimeInterval))
        } catch {
            if !Task.isCancelled { logger.error("cannot read due inbound webhooks: \(error)") }
            return []
        }
    }

    /// Writes one attempt; false when the store did not take it.
    private func record(_ id: InboundMessageID, _ attempt: WebhookAttempt) async -> Bool {
        do {
            try await store.recordWebhookAttempt(id, attempt)
            return true
        } catch {
            if Task.isCancelled {
                logger.notice("webhook attempt of inbound \(id) not recorded at shutdown: it is posted again on the next start")
            } else {
                logger.error("cannot record the webhook attempt of inbound \(id): \(error)")
            }
            return false
        }
    }

    // MARK: - One attempt

    /// Posts one message and says what to record; nil when the post was cancelled.
    private func attempt(_ message: InboundMessage, client: HTTPClient) async -> WebhookAttempt? {
        guard let url = message.webhookURL, let target = WebhookTarget(url) else {
            logger.error("inbound \(message.id): webhook URL is not an http or https URL, giving up")
            return WebhookAttempt(
                at: Date(), status: nil,
                error: Self.clipped("webhook URL is not an absolute http or https URL: \(message.webhookURL ?? "none")"),
                nextAttemptAt: nil)
        }
        let body: [UInt8]
        do {
            body = try InboundPayload(message, maxAttachmentContentBytes: configuration.maxAttachmentContentBytes).jsonBody()
        } catch {
            return WebhookAttempt(at: Date(), status: nil, error: Self.clipped("cannot encode the payload: \(error)"), nextAttemptAt: nil)
        }
        let result = await post(body, to: url, id: message.id, client: client)
        if case .cancelled = result { return nil }
        let attempt = Self.attempt(
            after: result, receivedAt: message.receivedAt, now: Date(), retry: configuration.retry,
            random: Double.random(in: 0..<1))
        if attempt.delivered {
            logger.debug("inbound \(message.id) posted to \(target.origin): \(attempt.status ?? 0)")
        } else if attempt.nextAttemptAt == nil {
            logger.error("inbound \(message.id) not posted to \(target.origin), giving up: \(attempt.error ?? "")")
        } else {
            logger.warning("inbound \(message.id) not posted to \(target.origin), trying again later: \(attempt.error ?? "")")
        }
        return attempt
    }

    private func post(_ body: [UInt8], to url: String, id: InboundMessageID, client: HTTPClient) async -> WebhookPostResult {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: Self.userAgent)
        request.headers.add(name: WebhookSignature.eventHeader, value: "inbound")
        request.headers.add(name: WebhookSignature.deliveryHeader, value: id.description)
        request.headers.add(name: WebhookSignature.signatureHeader, value: signature.header(for: body, at: Date()))
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: TimeAmount(configuration.timeout), logger: logger)
            var text: [UInt8] = []
            // Only the start of the answer is kept; a body that fails to arrive changes nothing.
            do {
                let limit = Self.responseTextLimit * 4 // UTF-8 bytes of the characters kept, at most
                for try await chunk in response.body {
                    text += chunk.readableBytesView.prefix(limit - text.count)
                    if text.count >= limit { break }
                }
            } catch {}
            return .answered(
                status: Int(response.status.code), location: response.headers.first(name: "Location"),
                body: String(decoding: text, as: UTF8.self))
        } catch {
            if Task.isCancelled { return .cancelled }
            return .failed(Self.describe(error, timeout: configuration.timeout))
        }
    }

    /// What a failed post is recorded as: a short reason, no more.
    static func describe(_ error: any Error, timeout: Duration) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .connectTimeout, .readTimeout, .writeTimeout, .tlsHandshakeTimeout:
                return "no answer within \(timeout)"
            case .remoteConnectionClosed:
                return "the connection was closed before an answer"
            default:
                return "HTTP client error: \(error.shortDescription)"
            }
        }
        if let error = error as? IOError {
            return "connection error: " + String(cString: strerror(error.errnoCode))
        }
        return clipped("cannot post: \(error)")
    }

    /// What to record for a post: a 2xx delivers; anything else is tried again at the
    /// schedule's next time, or given up when there is none.
    static func attempt(
        after result: WebhookPostResult, receivedAt: Date, now: Date, retry: RetrySchedule, random: Double
    ) -> WebhookAttempt {
        let status: Int?
        let error: String
        switch result {
        case .answered(let code, _, _) where (200..<300).contains(code):
            return WebhookAttempt(at: now, status: code, error: nil, nextAttemptAt: nil)
        case .answered(let code, let location, _) where (300..<400).contains(code):
            status = code
            error = "HTTP \(code): redirects are not followed" + (location.map { " (Location: \($0))" } ?? "")
        case .answered(let code, _, let body):
            status = code
            let text = body.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            error = "HTTP \(code)" + (text.isEmpty ? "" : ": " + String(text.prefix(responseTextLimit)))
        case .failed(let reason):
            status = nil
            error = reason
        case .cancelled:
            status = nil
            error = "cancelled"
        }
        return WebhookAttempt(
            at: now, status: status, error: clipped(error),
            nextAttemptAt: retry.nextWebhookAttempt(receivedAt: receivedAt, after: now, random: random))
    }

    private static func clipped(_ text: String) -> String {
        text.count <= errorTextLimit ? text : String(text.prefix(errorTextLimit - 1)) + "…"
    }
}

/// How one post ended.
enum WebhookPostResult: Sendable, Equatable {
    /// The receiver answered: its status, `Location` (for a redirect) and the start of its body.
    case answered(status: Int, location: String?, body: String)
    /// No answer: a connection error or a timeout.
    case failed(String)
    /// The post was cancelled by shutdown.
    case cancelled
}

/// A webhook URL Tern posts to: absolute, `http` or `https`, with a host.
struct WebhookTarget: Sendable {
    /// `scheme://host[:port]`, for logs: paths and queries often carry the receiver's tokens.
    var origin: String

    init?(_ url: String) {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else { return nil }
        origin = "\(scheme)://\(host)" + (components.port.map { ":\($0)" } ?? "")
    }
}

extension RetrySchedule {
    /// The next attempt after `now` for a webhook of a message received at `receivedAt`, or
    /// nil to give up.
    ///
    /// The schedule is anchored at arrival: retry *n* is due `delay(afterAttempt: 1) + … +
    /// delay(afterAttempt: n)` after `receivedAt`, and the next attempt is the first such time
    /// after `now` (plus up to `jitter` of its delay). So no attempt count is needed, a restart
    /// keeps the schedule, and a slow attempt does not push the later ones back. When that
    /// time falls at or after `receivedAt + maximumAge`, there is none.
    func nextWebhookAttempt(receivedAt: Date, after now: Date, random: Double) -> Date? {
        let elapsed = now.timeIntervalSince(receivedAt)
        var offset: TimeInterval = 0
        var delay: TimeInterval?
        for step in delays.map(\.schedulerTimeInterval) {
            offset += step
            if offset > elapsed {
                delay = step
                break
            }
        }
        if delay == nil {
            let repeating = repeatingDelay.schedulerTimeInterval
            let steps = ((elapsed - offset) / repeating).rounded(.down) + 1
            offset += steps * repeating
            delay = repeating
        }
        guard offset < maximumAge.schedulerTimeInterval else { return nil }
        let extra = (delay ?? 0) * jitter * min(max(random, 0), 1)
        return receivedAt.addingTimeInterval(offset + extra)
    }
}

/// Wakes one waiting task early: a signal given while no one waits is kept for the next wait.
final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns on a signal, after `timeout`, or when the task is cancelled.
    func wait(upTo timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: timeout) }
            group.addTask { await self.waitForSignal() }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForSignal() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    // Cancelled before it could wait: end without taking a signal.
                    if Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}
