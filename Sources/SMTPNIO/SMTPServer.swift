public import Logging
public import NIOCore
import NIOPosix
import NIOSSL
import SMTPCore
import Synchronization

/// An SMTP server (RFC 5321 submission, RFC 6409) on one or more listeners.
///
/// Sessions run as channel handlers on the event loop group; backend calls run as tasks and
/// never block an event loop.
public final class SMTPServer: Sendable {
    public let configuration: SMTPServerConfiguration
    private let backend: any SMTPServerBackend
    private let group: any EventLoopGroup
    private let logger: Logger
    private let registry: SMTPSessionRegistry
    private let shutdownComplete: EventLoopPromise<Void>

    public init(configuration: SMTPServerConfiguration, backend: any SMTPServerBackend, group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.backend = backend
        self.group = group
        self.logger = logger
        self.registry = SMTPSessionRegistry(limits: configuration.limits)
        self.shutdownComplete = group.next().makePromise(of: Void.self)
    }

    /// Starts listening; returns the bound addresses in the order given (useful with port 0).
    public func bind(_ listeners: [SMTPListenerAddress]) async throws -> [SocketAddress] {
        var addresses: [SocketAddress] = []
        for listener in listeners {
            let tlsContext = configuration.tlsContext
            if listener.implicitTLS && tlsContext == nil {
                throw SMTPServerError(code: .tlsContextRequired, hint: "implicit TLS on \(listener.host):\(listener.port) needs a TLS context")
            }
            let configuration = self.configuration
            let backend = self.backend
            let registry = self.registry
            var logger = self.logger
            logger[metadataKey: "smtp.listener"] = "\(listener.host):\(listener.port)"
            let sessionLogger = logger
            let bootstrap = ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if listener.implicitTLS, let tlsContext {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext))
                        }
                        try channel.pipeline.syncOperations.addHandler(SMTPServerSessionHandler(
                            configuration: configuration,
                            backend: backend,
                            registry: registry,
                            implicitTLS: listener.implicitTLS,
                            logger: sessionLogger
                        ))
                    }
                }
            let channel = try await bootstrap.bind(host: listener.host, port: listener.port).get()
            guard registry.addListener(channel) else {
                try? await channel.close()
                throw SMTPServerError(code: .shuttingDown, hint: "server is shutting down")
            }
            guard let address = channel.localAddress else {
                throw SMTPServerError(code: .noLocalAddress, hint: "listener has no local address")
            }
            logger.info("SMTP listening", metadata: ["smtp.address": "\(address)", "smtp.implicitTLS": "\(listener.implicitTLS)"])
            addresses.append(address)
        }
        return addresses
    }

    /// Waits until `shutdownGracefully` has finished.
    public func run() async throws {
        try await shutdownComplete.futureResult.get()
    }

    /// Stops accepting connections; idle sessions get `421 4.3.2` and close; sessions
    /// receiving a message finish it first. After `timeout`, remaining sessions are closed.
    public func shutdownGracefully(timeout: Duration) async {
        guard let (listeners, sessions) = registry.beginShutdown() else {
            try? await shutdownComplete.futureResult.get()
            return
        }
        logger.info("SMTP server shutting down", metadata: ["smtp.sessions": "\(sessions.count)"])
        for listener in listeners {
            try? await listener.close()
        }
        for session in sessions {
            session.pipeline.fireUserInboundEventTriggered(SMTPServerShutdownEvent())
        }
        let allClosed = EventLoopFuture.andAllComplete(sessions.map(\.closeFuture), on: group.next())
        let registry = self.registry
        await withTaskGroup(of: Bool.self) { tasks in
            tasks.addTask {
                try? await allClosed.get()
                return true
            }
            tasks.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            if await tasks.next() == false {
                // Timed out: close what is left; the first task then finishes too.
                for session in registry.sessions() {
                    session.close(promise: nil)
                }
            }
            tasks.cancelAll()
        }
        logger.info("SMTP server stopped")
        shutdownComplete.succeed(())
    }
}

/// Open sessions and listeners, and the connection limits (total and per client address).
final class SMTPSessionRegistry: Sendable {
    enum Admission {
        case admitted
        case tooManyConnections
        case shuttingDown
    }

    private struct State {
        var listeners: [any Channel] = []
        var sessions: [ObjectIdentifier: any Channel] = [:]
        var perClient: [String: Int] = [:]
        var shuttingDown = false
    }

    private let limits: SMTPServerLimits
    private let state = Mutex(State())

    init(limits: SMTPServerLimits) {
        self.limits = limits
    }

    private static func clientKey(_ channel: any Channel) -> String {
        channel.remoteAddress?.ipAddress ?? "unknown"
    }

    func admit(_ channel: any Channel) -> Admission {
        let key = Self.clientKey(channel)
        return state.withLock { state in
            if state.shuttingDown { return .shuttingDown }
            let fromClient = state.perClient[key, default: 0]
            guard state.sessions.count < limits.maxConnections, fromClient < limits.maxConnectionsPerClient else {
                return .tooManyConnections
            }
            state.sessions[ObjectIdentifier(channel)] = channel
            state.perClient[key] = fromClient + 1
            return .admitted
        }
    }

    func release(_ channel: any Channel) {
        let key = Self.clientKey(channel)
        state.withLock { state in
            guard state.sessions.removeValue(forKey: ObjectIdentifier(channel)) != nil else { return }
            let remaining = state.perClient[key, default: 1] - 1
            state.perClient[key] = remaining > 0 ? remaining : nil
        }
    }

    func addListener(_ channel: any Channel) -> Bool {
        state.withLock { state in
            guard !state.shuttingDown else { return false }
            state.listeners.append(channel)
            return true
        }
    }

    func sessions() -> [any Channel] {
        state.withLock { Array($0.sessions.values) }
    }

    /// Marks the server as draining; nil if it already was.
    func beginShutdown() -> (listeners: [any Channel], sessions: [any Channel])? {
        state.withLock { state in
            guard !state.shuttingDown else { return nil }
            state.shuttingDown = true
            return (state.listeners, Array(state.sessions.values))
        }
    }
}
