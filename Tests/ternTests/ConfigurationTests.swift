import Foundation
import SMTPCore
import TernEngine
import TernStorePostgres
import Testing

@testable import tern

@Suite struct ConfigurationTests {
    /// The YAML block of README's Configuration section: every key with its default.
    static func readmeYAML() throws -> String {
        let readme = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let section = try #require(text.range(of: "## Configuration\n"))
        let start = try #require(text.range(of: "```yaml\n", range: section.upperBound..<text.endIndex))
        let end = try #require(text.range(of: "```", range: start.upperBound..<text.endIndex))
        return String(text[start.upperBound..<end.lowerBound])
    }

    static func load(_ yaml: String? = nil, environment: [String: String] = [:]) throws -> TernConfiguration {
        try TernConfiguration.load(yaml: yaml, origin: "test.yaml", environment: environment)
    }

    static func error(_ yaml: String? = nil, environment: [String: String] = [:]) -> String? {
        do {
            _ = try load(yaml, environment: environment)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func keysAreExactlyThoseTheReadmeLists() throws {
        var source = ConfigurationSource()
        let known = Dictionary(TernConfiguration.settings.map { ($0.key, $0.shape) }) { first, _ in first }
        try source.addYAML(try Self.readmeYAML(), origin: "README.md", known: known)
        #expect(Set(source.values.keys) == Set(TernConfiguration.keys))
        #expect(Set(TernConfiguration.keys).count == TernConfiguration.keys.count, "a key is read twice")
    }

    @Test func readmeDefaultsAreTheComponentsDefaults() throws {
        #expect(try Self.load(try Self.readmeYAML()) == TernConfiguration())
    }

    @Test func noFileGivesEachComponentsDefaultInit() throws {
        let configuration = try Self.load()
        #expect(configuration == TernConfiguration())
        #expect(configuration.limits == SMTPServerLimits())
        #expect(configuration.delivery.scheduler == DeliverySchedulerConfiguration())
        #expect(configuration.delivery.connectionReuse == SMTPConnectionPool.Configuration())
        #expect(configuration.store.maxConnections == PostgresStore.defaultMaximumConnections)
        let transport = configuration.transportConfiguration()
        let engine = SMTPTransport.Configuration(heloName: configuration.hostname)
        #expect(transport.connectTimeout == engine.connectTimeout)
        #expect(transport.smtpPort == engine.smtpPort)
        #expect(transport.connectionCache == engine.connectionCache)
        #expect(transport.connectionReuse == engine.connectionReuse)
        #expect(configuration.deliveryConfiguration(node: "n").lease == DeliveryService.Configuration(node: "n").lease)
        #expect(configuration.inbound.retry == InboundWebhooks.Configuration.defaultRetry)
    }

    @Test func environmentNames() {
        #expect(TernConfiguration.environmentName(of: "smtp.limits.max_message_size") == "TERN_SMTP_LIMITS_MAX_MESSAGE_SIZE")
        #expect(TernConfiguration.environmentName(of: "data_dir") == "TERN_DATA_DIR")
    }

    @Test func environmentOverridesEachKindOfValue() throws {
        let configuration = try Self.load(
            """
            hostname: from-file.example
            smtp: {limits: {max_message_size: 1000}}
            """,
            environment: [
                "TERN_HOSTNAME": "mail.example.com",
                "TERN_SMTP_LIMITS_MAX_MESSAGE_SIZE": "12345",
                "TERN_SMTP_MX_MAX_MESSAGE_SIZE": "777",
                "TERN_SMTP_LIMITS_COMMAND_TIMEOUT": "42",
                "TERN_DELIVERY_ENABLED": "false",
                "TERN_SMTP_SUBMISSION_LISTEN": "127.0.0.1:1587, [::1]:1588",
                "TERN_HTTP_LISTEN": ":9000",
                "TERN_INBOUND_ROUTES": "example.com=store, a@example.org=https://hooks.example/in",
                "TERN_DELIVERY_ROUTES": "*=relay.example.net:587 tls=verify",
                "TERN_DELIVERY_RETRY_SCHEDULE": "10,20,30",
                "TERN_DELIVERY_MAX_AGE": "600",
                "TERN_TRACKING_SECRET": "c2VjcmV0",
                "TERN_NODES_HEARTBEAT_INTERVAL": "3",
                "TERN_UNRELATED": "ignored",
            ])
        #expect(configuration.hostname == "mail.example.com")
        #expect(configuration.limits.maxMessageSize == 12345)
        #expect(configuration.mx.maxMessageSize == 777)
        #expect(configuration.limits.commandTimeout == .seconds(42))
        #expect(configuration.delivery.enabled == false)
        #expect(configuration.submission.listen == [ListenAddress(host: "127.0.0.1", port: 1587), ListenAddress(host: "::1", port: 1588)])
        #expect(configuration.http.listen == ListenAddress(host: "0.0.0.0", port: 9000))
        #expect(configuration.inbound.routes == ["example.com": "store", "a@example.org": "https://hooks.example/in"])
        #expect(configuration.delivery.routes == ["*": DeliveryRoute(host: "relay.example.net", port: 587, tls: .verify)])
        #expect(configuration.delivery.scheduler.retry.delays == [.seconds(10), .seconds(20)])
        #expect(configuration.delivery.scheduler.retry.repeatingDelay == .seconds(30))
        #expect(configuration.delivery.scheduler.retry.maximumAge == .seconds(600))
        #expect(configuration.tracking.secret == "c2VjcmV0")
        #expect(configuration.nodes.heartbeatInterval == .seconds(3))
    }

    @Test func fileValuesReachTheirComponents() throws {
        let configuration = try Self.load(
            """
            smtp:
              submission: {listen: 127.0.0.1:1587}
              limits: {max_recipients: 2, max_connections_per_ip: 3}
            delivery:
              initial_concurrency: 2
              max_concurrency: 4
              connection_cache_idle_timeout: 9
            domains:
              Example.COM: {return_path_domain: rp.example.com}
              plain.example:
            inbound: {timeout: 5, max_attachment_size: 0}
            """)
        #expect(configuration.submission.listen == [ListenAddress(host: "127.0.0.1", port: 1587)])
        #expect(configuration.limits.maxRecipients == 2)
        #expect(configuration.limits.maxConnectionsPerClient == 3)
        #expect(configuration.delivery.scheduler.concurrency.initial == 2)
        #expect(configuration.delivery.scheduler.concurrency.maximum == 4)
        #expect(configuration.delivery.connectionReuse.idleTimeout == .seconds(9))
        #expect(configuration.domains == ["example.com": DomainSettings(returnPathDomain: "rp.example.com"), "plain.example": DomainSettings()])
        #expect(configuration.inbound.timeout == .seconds(5))
        #expect(configuration.inbound.maxAttachmentSize == 0)
    }

    @Test func unknownKeyNamesTheNearestKnownKey() {
        let message = Self.error("smtp: {limits: {max_mesage_size: 5}}")
        #expect(message == "test.yaml: unknown key smtp.limits.max_mesage_size (did you mean smtp.limits.max_message_size?)")
        #expect(Self.error("smtp: {limits: {max_recipeints: 5}}")?.contains("did you mean smtp.limits.max_recipients?") == true)
        #expect(Self.error("smtp: {limit: {max_recipients: 5}}")?.contains("did you mean smtp.limits.max_recipients?") == true)
        #expect(Self.error("delivery: {conect_timeout: 5}")?.contains("did you mean delivery.connect_timeout?") == true)
        // Nothing near: the key alone.
        #expect(Self.error("completely_different: 1") == "test.yaml: unknown key completely_different")
        #expect(Self.error("domains: {example.com: {return_path_domian: x}}")?.contains("did you mean return_path_domain?") == true)
    }

    @Test(arguments: [
        ("max_mesage_size", "max_message_size", 1),
        ("max_recipeints", "max_recipients", 2),
        ("", "abc", 3),
        ("same", "same", 0),
        ("kitten", "sitting", 3),
    ])
    func editDistances(a: String, b: String, distance: Int) {
        #expect(editDistance(a, b) == distance)
        #expect(editDistance(b, a) == distance)
    }

    @Test func nearestKeyIsOnlySuggestedWhenNear() {
        let known = TernConfiguration.keys
        #expect(nearestKey(to: "smtp.limits.max_mesage_size", in: known) == "smtp.limits.max_message_size")
        #expect(nearestKey(to: "smtp.mx.max_mesage_size", in: known) == "smtp.mx.max_message_size")
        #expect(nearestKey(to: "http.listn", in: known) == "http.listen")
        #expect(nearestKey(to: "zzzzzzzz", in: known) == nil)
    }

    @Test func badValuesNameTheirKeyAndSource() {
        #expect(Self.error("smtp: {limits: {max_recipients: many}}")?.contains("test.yaml: 'smtp.limits.max_recipients'") == true)
        #expect(Self.error(environment: ["TERN_HTTP_EVENT_LOOPS": "0"])?.contains("TERN_HTTP_EVENT_LOOPS: 'http.event_loops'") == true)
        #expect(Self.error(environment: ["TERN_SMTP_MX_LISTEN": "nowhere"])?.contains("smtp.mx.listen") == true)
        #expect(Self.error("delivery: {initial_concurrency: 30}")?.contains("delivery.initial_concurrency") == true)
        #expect(Self.error("tls: {certificate: /c.pem}")?.contains("tls.key") == true)
        #expect(Self.error("sending: {allow_unverified_domains: maybe}")?.contains("sending.allow_unverified_domains") == true)
        #expect(Self.error(environment: ["TERN_STORE_URL": "mysql://x"])?.contains("TERN_STORE_URL") == true)
        #expect(Self.error("delivery: {routes: {example.com: 'relay:25 tls=never'}}")?.contains("delivery.routes.example.com") == true)
    }

    @Test func nullAndEmptyKeepDefaults() throws {
        let configuration = try Self.load(
            """
            smtp: {mx: {listen: [], max_message_size: null}}
            store: {url: ""}
            tracking: {placeholder: ""}
            """)
        #expect(configuration.mx.listen.isEmpty)
        #expect(configuration.mx.maxMessageSize == nil)
        #expect(configuration.store.url == nil)
        #expect(configuration.tracking.placeholder == TrackingSettings().placeholder)
    }
}
