import ArgumentParser
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import SMTPCore
import SMTPNIO
import ServiceLifecycle
import TernCore
import TernEngine
import TernHTTP
import TernStoreSQLite

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run Tern: SMTP submission, the queue and HTTP, until SIGTERM or SIGINT.")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let configuration = try options.load()
        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tern")

        let folder = DataFolder(path: configuration.dataDir)
        try folder.create()
        let tlsContext = try folder.tlsContext(configuration: configuration)
        _ = try folder.signingSecret()
        let store = try SQLiteStore(path: configuration.databasePath)

        let credentials = CredentialDirectory(store: store)
        let committer = GroupCommitter(store: store, logger: Logger(label: "tern.intake"))
        let intake = Intake(
            credentials: credentials, committer: committer, hostname: configuration.hostname,
            logger: Logger(label: "tern.intake"))

        let group = MultiThreadedEventLoopGroup.singleton
        let smtp = SubmissionService(
            server: SMTPServer(
                configuration: try configuration.smtpServerConfiguration(tlsContext: tlsContext),
                backend: intake, group: group, logger: Logger(label: "tern.smtp")),
            listeners: try configuration.submissionListeners(),
            logger: logger)

        let httpAddress = try ListenAddress(configuration.http.listen, key: "http.listen")
        let api = TernAPI(store: store, credentials: credentials)
        let http = Application(
            router: api.buildRouter(),
            configuration: ApplicationConfiguration(
                address: .hostname(httpAddress.host, port: httpAddress.port), serverName: "Tern"),
            onServerRunning: { channel in
                logger.info("http listening on \(channel.localAddress?.description ?? httpAddress.description)")
            },
            logger: Logger(label: "tern.http"))

        // Shut down in reverse order: SMTP first (sessions in DATA finish and are committed),
        // then HTTP, then the committer drains what is pending.
        let services = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    .init(service: committer),
                    .init(service: http),
                    .init(service: smtp),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await services.run()
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
        logger.info("stopped")
    }
}

/// The submission listeners as a service: binds, then waits for shutdown and drains sessions.
struct SubmissionService: Service {
    let server: SMTPServer
    let listeners: [SMTPListenerAddress]
    let logger: Logger

    /// How long sessions in DATA may take to finish after SIGTERM.
    static let drainTimeout: Duration = .seconds(30)

    func run() async throws {
        _ = try await server.bind(listeners)
        try? await gracefulShutdown()
        logger.info("smtp stopping: no new connections; sessions in DATA may finish")
        await server.shutdownGracefully(timeout: Self.drainTimeout)
    }
}

extension TernConfiguration {
    func submissionListeners() throws -> [SMTPListenerAddress] {
        let plain = try submission.listen.map { try ListenAddress($0, key: "smtp.submission.listen") }
        let implicit = try submission.tlsListen.map { try ListenAddress($0, key: "smtp.submission.tls_listen") }
        return plain.map { SMTPListenerAddress(host: $0.host, port: $0.port, implicitTLS: false) }
            + implicit.map { SMTPListenerAddress(host: $0.host, port: $0.port, implicitTLS: true) }
    }

    func smtpServerConfiguration(tlsContext: NIOSSLContext) throws -> SMTPServerConfiguration {
        var serverLimits = SMTPServerLimits()
        if let value = limits.maxMessageSize { serverLimits.maxMessageSize = value }
        if let value = limits.maxRecipients { serverLimits.maxRecipients = value }
        if let value = limits.maxCommandLine { serverLimits.maxCommandLineLength = value }
        if let value = limits.maxTextLine { serverLimits.maxTextLineLength = value }
        if let value = limits.maxErrors { serverLimits.maxErrors = value }
        if let value = limits.commandTimeout { serverLimits.commandTimeout = .seconds(value) }
        if let value = limits.dataTimeout { serverLimits.dataTimeout = .seconds(value) }
        if let value = limits.maxConnections { serverLimits.maxConnections = value }
        if let value = limits.maxConnectionsPerIP { serverLimits.maxConnectionsPerClient = value }
        return SMTPServerConfiguration(
            hostname: hostname, limits: serverLimits, tlsContext: tlsContext,
            allowInsecureAuth: submission.allowInsecureAuth, requireIdentity: true, offerAuth: true)
    }
}
