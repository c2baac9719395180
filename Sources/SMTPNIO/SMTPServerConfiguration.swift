import NIOCore
public import NIOSSL
public import SMTPCore

/// How an SMTP server presents itself and what it allows.
public struct SMTPServerConfiguration: Sendable {
    /// The name in the greeting, the EHLO reply and timeout replies.
    public var hostname: String
    public var limits: SMTPServerLimits
    /// Enables STARTTLS, and is required for implicit-TLS listeners.
    public var tlsContext: NIOSSLContext?
    /// AUTH without TLS. Honoured only for clients on a loopback address.
    public var allowInsecureAuth: Bool
    /// MAIL needs an identity (AUTH, or one bound to the client's address): a submission server.
    public var requireIdentity: Bool
    /// Offer AUTH PLAIN and LOGIN (when TLS is active, or insecure AUTH is allowed).
    public var offerAuth: Bool
    /// Put each RCPT to the backend's `checkRecipient`: an MX that takes mail only for its domains.
    public var checkRecipients: Bool
    /// Put each MAIL to the backend's `checkSender`: submission, where a credential may send
    /// only for its domains.
    public var checkSenders: Bool

    public init(
        hostname: String,
        limits: SMTPServerLimits = SMTPServerLimits(),
        tlsContext: NIOSSLContext? = nil,
        allowInsecureAuth: Bool = false,
        requireIdentity: Bool = true,
        offerAuth: Bool = true,
        checkRecipients: Bool = false,
        checkSenders: Bool = false
    ) {
        self.checkRecipients = checkRecipients
        self.checkSenders = checkSenders
        self.hostname = hostname
        self.limits = limits
        self.tlsContext = tlsContext
        self.allowInsecureAuth = allowInsecureAuth
        self.requireIdentity = requireIdentity
        self.offerAuth = offerAuth
    }
}

/// One address to listen on.
public struct SMTPListenerAddress: Sendable, Hashable {
    public var host: String
    /// 0 picks a free port; `SMTPServer.bind` returns the bound address.
    public var port: Int
    /// TLS from the first byte (RFC 8314 §3.3, port 465 style) instead of STARTTLS.
    public var implicitTLS: Bool

    public init(host: String, port: Int, implicitTLS: Bool = false) {
        self.host = host
        self.port = port
        self.implicitTLS = implicitTLS
    }
}

/// Errors from setting up the server (never from a session).
public struct SMTPServerError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable {
        let rawValue: String
        public static let tlsContextRequired = Code(rawValue: "tlsContextRequired")
        public static let shuttingDown = Code(rawValue: "shuttingDown")
        public static let noLocalAddress = Code(rawValue: "noLocalAddress")
    }

    public var code: Code
    public var hint: String

    public var description: String { "\(code.rawValue): \(hint)" }
}

/// Sent through a session's pipeline when the server starts draining.
struct SMTPServerShutdownEvent: Sendable {}

extension SocketAddress {
    /// 127.0.0.0/8, ::1, or an IPv4-mapped loopback address.
    var isLoopback: Bool {
        switch self {
        case .v4(let address):
            return UInt32(bigEndian: address.address.sin_addr.s_addr) >> 24 == 127
        case .v6:
            guard let ip = ipAddress?.lowercased() else { return false }
            return ip == "::1" || ip.hasPrefix("::ffff:127.")
        case .unixDomainSocket:
            return true
        }
    }
}
