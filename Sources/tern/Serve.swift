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
import TernDNS
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
        LoggingSystem.bootstrap { label in TernLogHandler(label: label, level: level) }
        let logger = Logger(label: "tern")

        let folder = DataFolder(path: configuration.dataDir)
        try folder.create()
        let tlsContext = try folder.tlsContext(configuration: configuration)
        try await withStore(configuration) { store in
            try await serve(configuration, store: store, folder: folder, tlsContext: tlsContext, logger: logger)
        }
        logger.info("stopped")
    }

    private func serve(
        _ configuration: TernConfiguration, store: any Store, folder: DataFolder, tlsContext: NIOSSLContext, logger: Logger
    ) async throws {
        // This node among those sharing the store: its name in leases and its number in new ids.
        let nodeID = try folder.nodeID()
        let nodeNumber = try await store.nodeNumber(of: nodeID)
        TimeOrderedID.shared.setNode(nodeNumber)
        let nodes = NodeRegistry(
            store: store,
            configuration: NodeRegistry.Configuration(
                node: nodeID, hostname: ProcessInfo.processInfo.hostName,
                detail: "smtp \((configuration.submission.listen + configuration.submission.tlsListen).map(\.description).joined(separator: ",")) http \(configuration.http.listen)",
                interval: configuration.nodes.heartbeatInterval),
            logger: Logger(label: "tern.nodes"))
        try await nodes.register()
        logger.info(
            "node \(nodeID) (number \(nodeNumber)) on \(configuration.store.url == nil ? "SQLite \(configuration.databasePath)" : "PostgreSQL"); \(nodes.liveNodes) live node(s)")

        // Secrets every node signs and verifies with live in the store (unless configured).
        let keys = try configuration.trackingKeys(currentSecret: try await configuration.tokenSecret(store: store, folder: folder))
        // Read before the directories load: a change made while they load is reloaded at once.
        let loadedGeneration = try? await store.configurationGeneration()
        let domains = DomainDirectory(store: store, logger: Logger(label: "tern.domains"))
        await domains.reload()
        let tracking = try TrackingWiring(configuration: configuration, keys: keys, store: store, domains: domains)

        let credentials = CredentialDirectory(store: store, throttle: configuration.auth)
        let committer = GroupCommitter(store: store, logger: Logger(label: "tern.intake"))
        let allowUnverified = configuration.allowsUnverifiedDomains()
        if allowUnverified {
            logger.notice("unverified sending domains may send (sending.allow_unverified_domains, or every listener on loopback)")
        }
        // Tenants' limits, from the file into the store, read once before the listeners open
        // and then every second.
        try await configuration.applyTenantSettings(to: store)
        let limiter = TenantLimiter(store: store, logger: Logger(label: "tern.limits"))
        try await limiter.refresh()
        let intake = Intake(
            credentials: credentials, committer: committer, hostname: configuration.hostname,
            tracker: tracking.tracker, senders: (SenderPolicy(allowUnverifiedDomains: allowUnverified), domains),
            limiter: limiter, logger: Logger(label: "tern.intake"))

        // SMTP sessions (submission and MX) on loops of their own, delivery's connections (and
        // its DNS queries) on others; HTTP on a third group (`HTTPEventLoops`).
        let eventLoops = SMTPEventLoops()
        let smtp = SubmissionService(
            server: SMTPServer(
                configuration: configuration.smtpServerConfiguration(tlsContext: tlsContext),
                backend: intake, group: eventLoops.intake, logger: Logger(label: "tern.smtp")),
            listeners: configuration.submissionListeners(),
            logger: logger)

        // The registry is stopped last: a node is marked stopped once it has finished its work.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: nodes), .init(service: committer), .init(service: domains), .init(service: limiter),
            .init(service: ConfigurationWatcher(
                store: store,
                reloads: [
                    { await credentials.reloadNow() },
                    { await domains.reload() },
                    { [logger] in
                        do { try await limiter.refresh() } catch { logger.warning("could not read the tenants' limits: \(error)") }
                    },
                ],
                loadedGeneration: loadedGeneration, logger: Logger(label: "tern.configuration"))),
        ]
        if configuration.delivery.enabled {
            let resolver = try configuration.dnsResolver(group: eventLoops.delivery)
            let transport = SMTPTransport(
                configuration: configuration.transportConfiguration(), resolver: resolver, group: eventLoops.delivery,
                logger: Logger(label: "tern.delivery"))
            var deliveryConfiguration = configuration.deliveryConfiguration(node: nodeID)
            deliveryConfiguration.liveNodes = { nodes.liveNodes }
            if configuration.bounces.verp {
                deliveryConfiguration.returnPath = VERPReturnPath(keys: keys, returnPaths: configuration.returnPaths(domains))
            }
            let delivery = DeliveryService(
                store: store, transport: transport, configuration: deliveryConfiguration,
                logger: Logger(label: "tern.delivery"))
            // Before delivery, so shut down after it: kept sessions are QUIT once no job can use them.
            if let pool = transport.connectionPool { services.append(.init(service: pool)) }
            services.append(.init(service: delivery))
        } else {
            logger.notice("delivery is disabled (delivery.enabled: false): mail is queued, not sent")
        }

        let httpAddress = configuration.http.listen
        let api = TernAPI(store: store, credentials: credentials)
        let router = api.buildRouter()
        tracking.routes.add(to: router)
        services.append(.init(service: tracking.routes.recorder))
        let serverName = "Tern"
        let routes = tracking.routes
        let httpLoops = HTTPEventLoops(threads: configuration.http.eventLoops)
        // Opens and clicks on links held in memory are answered on the event loop, the rest by the router.
        try TernHTTPChannel.checkFastPath(routes: routes, serverName: serverName)
        let http = Application(
            router: router,
            server: TernHTTPChannel.server(routes: routes, serverName: serverName, limits: configuration.http.connections),
            configuration: ApplicationConfiguration(
                address: .hostname(httpAddress.host, port: httpAddress.port), serverName: serverName),
            onServerRunning: { channel in
                logger.info("http listening on \(channel.localAddress?.description ?? httpAddress.description) (event loops: \(httpLoops.threadCount))")
            },
            eventLoopGroupProvider: .shared(httpLoops.group),
            logger: Logger(label: "tern.http"))

        // The MX: reports are read by the report service, inbound mail is posted to its route.
        let addressBook = try configuration.inboundAddressBook(keys: keys, directory: domains)
        services.append(.init(service: ReportService(
            reader: ReportReader(keys: keys, addresses: addressBook, store: store), store: store,
            logger: Logger(label: "tern.reports"))))

        let webhooks = InboundWebhooks(
            store: store,
            configuration: try await configuration.inboundWebhooksConfiguration(store: store, folder: folder),
            logger: Logger(label: "tern.inbound"))
        services.append(.init(service: webhooks))
        let mxListeners = configuration.mxListeners()
        if !mxListeners.isEmpty {
            let inboundIntake = InboundIntake(
                addresses: addressBook, store: store, hostname: configuration.hostname,
                rateLimiter: ClientRateLimiter(ratePerMinute: configuration.mx.maxRecipientsPerMinute),
                logger: Logger(label: "tern.mx"),
                committed: { messages in if messages.contains(where: { $0.webhookURL != nil }) { webhooks.wake() } })
            services.append(.init(service: SubmissionService(
                server: SMTPServer(
                    configuration: configuration.mxServerConfiguration(tlsContext: tlsContext),
                    backend: inboundIntake, group: eventLoops.intake, logger: Logger(label: "tern.mx")),
                listeners: mxListeners, logger: logger)))
        }

        // Shut down in reverse order: SMTP first (sessions in DATA finish and are committed),
        // then HTTP, then delivery (releasing its claims), then the committer drains what is pending.
        services += [.init(service: http), .init(service: smtp)]
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }
}

/// The tracking parts shared by intake (which writes the tokens and links) and the HTTP
/// endpoints (which verify and record them).
struct TrackingWiring {
    let routes: TrackingRoutes
    let tracker: MessageTracker

    init(configuration: TernConfiguration, keys: TrackingKeys, store: any Store, domains: DomainDirectory) throws {
        let links = LinkTable(store: store)
        let defaults = try configuration.trackingDefaults()
        tracker = MessageTracker(
            configuration: MessageTracker.Configuration(
                defaultFeatures: defaults.all, perCredential: defaults.perCredential,
                publicURL: configuration.http.publicURL, placeholder: configuration.tracking.placeholder,
                returnPaths: configuration.returnPaths(domains), domainFeatures: { domains.trackingFeatures(for: $0) }),
            keys: keys, logger: Logger(label: "tern.tracking"),
            rememberLinks: { message, targets in links.remember(targets, of: message) })
        routes = TrackingRoutes(
            keys: keys, classifier: EngagementClassifier(rules: try configuration.engagementRules()),
            recorder: EngagementRecorder(store: store, logger: Logger(label: "tern.tracking")), links: links, store: store)
    }
}

/// An SMTP server's listeners (submission, MX) as a service: binds, then waits for shutdown and drains sessions.
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
