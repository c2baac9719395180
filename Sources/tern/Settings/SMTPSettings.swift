import NIOSSL
import SMTPCore
import SMTPNIO

/// The submission listeners (`smtp.submission.*`).
struct SubmissionSettings: Sendable, Equatable, SettingsSection {
    var listen = [ListenAddress(host: "127.0.0.1", port: 2587)]
    /// Implicit TLS (RFC 8314).
    var tlsListen = [ListenAddress(host: "127.0.0.1", port: 2465)]
    /// Allow AUTH before STARTTLS, for loopback clients only.
    var allowInsecureAuth = false

    static var settings: [Setting<Self>] {
        [
            .listenAddresses("smtp.submission.listen", \.listen),
            .listenAddresses("smtp.submission.tls_listen", \.tlsListen),
            .bool("smtp.submission.allow_insecure_auth", \.allowInsecureAuth),
        ]
    }
}

/// The MX listener (`smtp.mx.*`), where bounces, complaints, unsubscribe mail and inbound mail arrive.
struct MXSettings: Sendable, Equatable, SettingsSection {
    /// Empty: no MX listener.
    var listen = [ListenAddress(host: "127.0.0.1", port: 2025)]
    /// The largest message the MX takes (bounces return the original); `smtp.limits.max_message_size` when nil.
    var maxMessageSize: Int?
    /// Recipients accepted per client IP and minute (Postfix's `smtpd_client_recipient_rate_limit`).
    var maxRecipientsPerMinute = 600
    /// The host name return-path MX records must point at; `hostname` when nil.
    var hostname: String?

    static var settings: [Setting<Self>] {
        [
            .listenAddresses("smtp.mx.listen", \.listen),
            .optionalInt("smtp.mx.max_message_size", \.maxMessageSize, minimum: 1),
            .int("smtp.mx.max_recipients_per_minute", \.maxRecipientsPerMinute, minimum: 1),
            .optionalString("smtp.mx.hostname", \.hostname),
        ]
    }
}

/// `smtp.limits.*`: the limits of both SMTP servers; the defaults are SMTPCore's.
extension SMTPServerLimits: SettingsSection {
    /// SMTPCore's named defaults.
    init() { self.init(maxCommandLineLength: Self.defaultMaxCommandLineLength) }

    static var settings: [Setting<Self>] {
        [
            .int("smtp.limits.max_message_size", \.maxMessageSize, minimum: 1),
            .int("smtp.limits.max_recipients", \.maxRecipients, minimum: 1),
            .int("smtp.limits.max_command_line", \.maxCommandLineLength, minimum: 512),
            .int("smtp.limits.max_text_line", \.maxTextLineLength, minimum: 1000),
            .int("smtp.limits.max_errors", \.maxErrors, minimum: 1),
            .seconds("smtp.limits.command_timeout", \.commandTimeout),
            .seconds("smtp.limits.data_timeout", \.dataTimeout),
            .int("smtp.limits.max_connections", \.maxConnections, minimum: 1),
            .int("smtp.limits.max_connections_per_ip", \.maxConnectionsPerClient, minimum: 1),
        ]
    }
}

extension TernConfiguration {
    func submissionListeners() -> [SMTPListenerAddress] {
        submission.listen.map { SMTPListenerAddress(host: $0.host, port: $0.port, implicitTLS: false) }
            + submission.tlsListen.map { SMTPListenerAddress(host: $0.host, port: $0.port, implicitTLS: true) }
    }

    func smtpServerConfiguration(tlsContext: NIOSSLContext) -> SMTPServerConfiguration {
        SMTPServerConfiguration(
            hostname: hostname, limits: limits, tlsContext: tlsContext,
            allowInsecureAuth: submission.allowInsecureAuth, requireIdentity: true, offerAuth: true, checkRecipients: true,
            checkSenders: true)
    }

    func mxListeners() -> [SMTPListenerAddress] {
        mx.listen.map { SMTPListenerAddress(host: $0.host, port: $0.port, implicitTLS: false) }
    }

    /// The MX: the submission limits, its own message size, no AUTH, no identity, every RCPT checked.
    func mxServerConfiguration(tlsContext: NIOSSLContext) -> SMTPServerConfiguration {
        var configuration = smtpServerConfiguration(tlsContext: tlsContext)
        if let size = mx.maxMessageSize { configuration.limits.maxMessageSize = size }
        configuration.requireIdentity = false
        configuration.offerAuth = false
        configuration.checkRecipients = true
        configuration.checkSenders = false
        return configuration
    }
}
