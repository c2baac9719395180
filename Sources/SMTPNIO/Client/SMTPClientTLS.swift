public import NIOSSL

/// What the client uses for STARTTLS.
///
/// The context decides whether the certificate is checked: a context made with
/// `verifyCertificate: false` accepts any certificate. Opportunistic TLS should use such a
/// context (RFC 7435 §1.3: encryption without authentication still beats clear text, and MX
/// certificates are often self-signed or for another name). A route that requires a verified
/// certificate uses a verifying context and `SMTPClientTLSPolicy.required`; the connection's
/// remote host name is then checked against the certificate.
/// - SeeAlso: RFC 3207, RFC 7435
public struct SMTPClientTLS: Sendable {
    public var context: NIOSSLContext

    public init(context: NIOSSLContext) {
        self.context = context
    }

    /// Makes a TLS 1.2+ client context. With `verifyCertificate`, the chain must lead to the
    /// system's trust roots (or those in `trustRootsPEMFile`) and the name must match.
    public init(verifyCertificate: Bool, trustRootsPEMFile: String? = nil) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = verifyCertificate ? .fullVerification : .none
        if let trustRootsPEMFile {
            configuration.trustRoots = .file(trustRootsPEMFile)
        }
        self.context = try NIOSSLContext(configuration: configuration)
    }
}
