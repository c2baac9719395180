import Synchronization
public import TernCore

/// The original link targets of recently seen messages, so that a click is redirected
/// without a database read; a message not held here is read once from the store.
public final class LinkTable: Sendable {
    /// Messages whose links are held at most (the oldest entry goes first).
    public static let defaultCapacity = 20_000

    private struct State {
        var links: [MessageID: [String]] = [:]
        var order: [MessageID] = []
        var start = 0
    }

    private let store: any EngagementStore
    private let capacity: Int
    private let state = Mutex(State())

    public init(store: any EngagementStore, capacity: Int = LinkTable.defaultCapacity) {
        precondition(capacity > 0, "a link table holds at least one message")
        self.store = store
        self.capacity = capacity
    }

    /// The target of link `index` of `message`; nil when there is no such link.
    public func target(of message: MessageID, index: Int) async throws -> String? {
        guard index >= 0 else { return nil }
        if let links = state.withLock({ $0.links[message] }) {
            return index < links.count ? links[index] : nil
        }
        let links = try await store.links(of: message)
        remember(links, of: message)
        return index < links.count ? links[index] : nil
    }

    /// The target of link `index` of `message` when the message's links are held here, without
    /// waiting: `.some(nil)` when it has no such link, nil when the store must be asked.
    public func cachedTarget(of message: MessageID, index: Int) -> String?? {
        guard index >= 0 else { return .some(nil) }
        guard let links = state.withLock({ $0.links[message] }) else { return nil }
        return .some(index < links.count ? links[index] : nil)
    }

    /// Holds a message's links (intake calls this as it commits one).
    public func remember(_ links: [String], of message: MessageID) {
        state.withLock { state in
            if state.links.updateValue(links, forKey: message) != nil { return }
            state.order.append(message)
            if state.order.count - state.start > capacity {
                state.links[state.order[state.start]] = nil
                state.start += 1
                // Drop the evicted prefix now and then, not on every insert.
                if state.start > capacity {
                    state.order.removeFirst(state.start)
                    state.start = 0
                }
            }
        }
    }
}
