public import Logging
public import ServiceLifecycle
import Synchronization
public import TernCore

/// Commits queued messages in groups: while one transaction is being written and
/// fsync'd, every message that arrives waits and goes into the next one, so many
/// concurrent sessions share one fsync instead of queueing for one each.
///
/// A caller's `commit` returns only once its message is durable; only then may the
/// SMTP session answer 250.
public final class GroupCommitter: Service, Sendable {
    private struct Request {
        var message: QueuedMessage
        var completion: @Sendable (Result<Void, any Error>) -> Void
    }

    private struct State {
        var pending: [Request] = []
        var wakeUp: CheckedContinuation<Void, Never>?
        var stopping = false
    }

    private let store: any Store
    private let maxBatch: Int
    private let logger: Logger
    private let state = Mutex(State())

    /// Messages written in one transaction at most.
    public static let defaultMaxBatch = 256

    public init(store: any Store, maxBatch: Int = GroupCommitter.defaultMaxBatch, logger: Logger) {
        self.store = store
        self.maxBatch = maxBatch
        self.logger = logger
    }

    /// Waits until `message` is committed. Throws the store's error if the commit failed.
    public func commit(_ message: QueuedMessage) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            commit(message) { continuation.resume(with: $0) }
        }
    }

    /// Calls `completion` (once, from the committer's task) when `message` is committed or
    /// its commit failed.
    public func commit(_ message: QueuedMessage, completion: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        let outcome: (accepted: Bool, wakeUp: CheckedContinuation<Void, Never>?) = state.withLock { state in
            guard !state.stopping else { return (false, nil) }
            state.pending.append(Request(message: message, completion: completion))
            defer { state.wakeUp = nil }
            return (true, state.wakeUp)
        }
        if outcome.accepted {
            outcome.wakeUp?.resume()
        } else {
            completion(.failure(StoreError(.unavailable, "the queue is shutting down")))
        }
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await commitUntilStopped()
            } onCancel: {
                self.stop()
            }
        } onGracefulShutdown: {
            self.stop()
        }
    }

    /// Stops taking new messages; what is pending is still committed before `run` returns.
    public func stop() {
        let wakeUp = state.withLock { state in
            state.stopping = true
            defer { state.wakeUp = nil }
            return state.wakeUp
        }
        wakeUp?.resume()
    }

    private func commitUntilStopped() async {
        while true {
            let batch: [Request]? = state.withLock { state in
                guard !state.pending.isEmpty else { return state.stopping ? nil : [] }
                let batch = Array(state.pending.prefix(maxBatch))
                state.pending.removeFirst(batch.count)
                return batch
            }
            guard let batch else { return }
            if batch.isEmpty {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state in
                        if !state.pending.isEmpty || state.stopping { return true }
                        state.wakeUp = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
                continue
            }
            do {
                try await store.commit(batch.map(\.message))
                for request in batch { request.completion(.success(())) }
            } catch {
                logger.error("commit of \(batch.count) messages failed: \(error)")
                for request in batch { request.completion(.failure(error)) }
            }
        }
    }
}
