public import NIOCore
import Synchronization

/// Limits on the HTTP listener's connections, for the tracking fast path and the router alike.
public struct HTTPConnectionLimits: Sendable, Equatable {
    /// How long a connection may wait for a whole request head: after it opens, or after its
    /// last response (idle), however the bytes trickle in. nginx's `client_header_timeout` and
    /// `keepalive_timeout` are of this order.
    public static let defaultIdleTimeout: TimeAmount = .seconds(60)
    /// Open connections at most; more are closed as they arrive.
    public static let defaultMaxConnections = 10_000
    /// Open connections from one client address at most; more are closed as they arrive.
    /// Mail clients fetch a message's images over a few connections; a proxy (Apple's, Gmail's)
    /// speaks for many readers from few addresses, hence the margin.
    public static let defaultMaxConnectionsPerIP = 256

    public var idleTimeout: TimeAmount
    public var maxConnections: Int
    public var maxConnectionsPerIP: Int

    public init(
        idleTimeout: TimeAmount = Self.defaultIdleTimeout, maxConnections: Int = Self.defaultMaxConnections,
        maxConnectionsPerIP: Int = Self.defaultMaxConnectionsPerIP
    ) {
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
        self.maxConnectionsPerIP = maxConnectionsPerIP
    }
}

/// Counts the open HTTP connections, in all and per client address, and admits a new one
/// only below both caps.
final class HTTPConnectionAdmission: Sendable {
    private struct State {
        var open = 0
        var perClient: [String: Int] = [:]
    }

    private let limits: HTTPConnectionLimits
    private let state = Mutex(State())

    init(limits: HTTPConnectionLimits) {
        self.limits = limits
    }

    /// Counts a connection from `client` (nil: an address not known) if both caps allow it;
    /// every admitted connection must be `release`d once.
    func admit(_ client: String?) -> Bool {
        let key = client ?? ""
        return state.withLock { state in
            let fromClient = state.perClient[key, default: 0]
            guard state.open < limits.maxConnections, fromClient < limits.maxConnectionsPerIP else { return false }
            state.open += 1
            state.perClient[key] = fromClient + 1
            return true
        }
    }

    func release(_ client: String?) {
        let key = client ?? ""
        state.withLock { state in
            state.open -= 1
            let remaining = state.perClient[key, default: 1] - 1
            state.perClient[key] = remaining > 0 ? remaining : nil
        }
    }

    /// Open connections, in all and from `client`.
    func count(from client: String?) -> (all: Int, client: Int) {
        state.withLock { ($0.open, $0.perClient[client ?? "", default: 0]) }
    }
}
