public import Logging
public import ServiceLifecycle
import Synchronization
public import TernCore

/// Commits queued messages in groups: while one transaction is being written and
/// fsync'd, every message that arrives waits and goes into the next one, so many
/// concurrent sessions share one fsync instead of queueing for one each.
///
/// A caller's completion runs only once its message is durable; only then may the
/// SMTP session answer 250.
///
/// Driven by the store's completions rather than by a task of its own: the next group is
/// handed to the store from the completion of the one before, so a message goes from the
/// session's event loop to the store's writer and back with no executor hop in between.
public final class GroupCommitter: Service, Sendable {
    private struct Request {
        /// One client transaction's messages (several when tracking gives each recipient
        /// a copy of its own): committed together or not at all.
        var messages: [QueuedMessage]
        var completion: @Sendable (Result<Void, any Error>) -> Void
    }

    private struct State {
        var pending: [Request] = []
        /// A group is with the store.
        var committing = false
        var stopping = false
        /// `run` waiting for the last group once stopping.
        var drained: CheckedContinuation<Void, Never>?
    }

    private let store: any Store
    private let maxBatch: Int
    private let logger: Logger
    private let state = Mutex(State())

    /// Client transactions (each one message, or one per recipient when tracked) written in
    /// one store transaction at most.
    public static let defaultMaxBatch = 256

    public init(store: any Store, maxBatch: Int = GroupCommitter.defaultMaxBatch, logger: Logger) {
        self.store = store
        self.maxBatch = maxBatch
        self.logger = logger
    }

    /// Calls `completion` (once, on the store's thread) when all of `messages` are committed,
    /// in one transaction, or their commit failed.
    public func commit(_ messages: [QueuedMessage], completion: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        enum Next {
            case refused
            case queued
            case write([Request])
        }
        let next: Next = state.withLock { state in
            guard !state.stopping else { return .refused }
            state.pending.append(Request(messages: messages, completion: completion))
            guard !state.committing else { return .queued }
            state.committing = true
            return .write(takeGroup(&state))
        }
        switch next {
        case .refused:
            completion(.failure(StoreError(.unavailable, "the queue is shutting down")))
        case .queued:
            break
        case .write(let group):
            write(group)
        }
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await drained()
            } onCancel: {
                self.stop()
            }
        } onGracefulShutdown: {
            self.stop()
        }
    }

    /// Stops taking new messages; what is pending is still committed before `run` returns.
    public func stop() {
        let drained = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.stopping = true
            guard !state.committing else { return nil }
            defer { state.drained = nil }
            return state.drained
        }
        drained?.resume()
    }

    /// Returns once stopping and every pending message is written.
    private func drained() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state in
                if state.stopping && !state.committing { return true }
                state.drained = continuation
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func takeGroup(_ state: inout State) -> [Request] {
        let group = Array(state.pending.prefix(maxBatch))
        state.pending.removeFirst(group.count)
        return group
    }

    private func write(_ group: [Request]) {
        store.commit(group.flatMap(\.messages)) { result in
            // The next group goes to the store before this one's callers hear back.
            let (next, drained) = self.state.withLock { state -> ([Request]?, CheckedContinuation<Void, Never>?) in
                if !state.pending.isEmpty { return (self.takeGroup(&state), nil) }
                state.committing = false
                guard state.stopping else { return (nil, nil) }
                defer { state.drained = nil }
                return (nil, state.drained)
            }
            if let next { self.write(next) }
            if case .failure(let error) = result {
                self.logger.error("commit of \(group.count) messages failed: \(error)")
            }
            for request in group { request.completion(result) }
            drained?.resume()
        }
    }
}
