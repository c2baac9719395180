import TernCore

extension Store {
    /// Awaits `commit(_:completion:)`, the store's only commit form (the one intake uses).
    func commitAndWait(_ messages: [QueuedMessage]) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            commit(messages) { continuation.resume(with: $0) }
        }
    }
}
