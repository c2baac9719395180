import Crypto
import Foundation
import NIOSSL
import TernCore
import SwiftASN1
import X509

/// Files `tern serve` keeps in its data folder: the self-signed certificate used when
/// none is configured, and this node's name. (Secrets live in the store, shared by every
/// node; an earlier Tern's secret files here are adopted once.)
struct DataFolder {
    var path: String

    func create() throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: tlsFolder, withIntermediateDirectories: true)
    }

    var tlsFolder: String { (path as NSString).appendingPathComponent("tls") }
    var certificatePath: String { (tlsFolder as NSString).appendingPathComponent("cert.pem") }
    var keyPath: String { (tlsFolder as NSString).appendingPathComponent("key.pem") }
    var signingSecretPath: String { (path as NSString).appendingPathComponent("signing-secret") }

    /// The configured certificate and key, or a self-signed pair for `hostname`
    /// generated on first start (ECDSA P-256, ten years, SAN with the host name and loopback).
    func tlsContext(configuration: TernConfiguration) throws -> NIOSSLContext {
        let certificatePath: String
        let keyPath: String
        if let configured = configuration.tls.certificate, let key = configuration.tls.key {
            certificatePath = configured
            keyPath = key
        } else {
            certificatePath = self.certificatePath
            keyPath = self.keyPath
            if !FileManager.default.fileExists(atPath: certificatePath) || !FileManager.default.fileExists(atPath: keyPath) {
                try generateSelfSigned(hostname: configuration.hostname)
            }
        }
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw ConfigurationError(description: "cannot load TLS certificate \(certificatePath) / key \(keyPath): \(error)")
        }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: tls)
    }

    func generateSelfSigned(hostname: String) throws {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            CommonName(hostname)
            OrganizationName("Tern (self-signed)")
        }
        let now = Date()
        var alternativeNames: [GeneralName] = [.dnsName(hostname)]
        if hostname != "localhost" { alternativeNames.append(.dnsName("localhost")) }
        alternativeNames.append(.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])))
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(10 * 365 * 24 * 3600),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                KeyUsage(digitalSignature: true)
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(alternativeNames)
            },
            issuerPrivateKey: Certificate.PrivateKey(key))
        try writeSecretFile(keyPath, contents: key.pemRepresentation + "\n")
        try (try certificate.serializeAsPEM().pemString + "\n").write(toFile: certificatePath, atomically: true, encoding: .utf8)
    }

    /// This node's name in delivery leases: made once and kept, so a restarted node can give
    /// up what its crashed run held at once instead of waiting for the leases to expire.
    func nodeID() throws -> String {
        let path = (self.path as NSString).appendingPathComponent("node-id")
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !id.isEmpty { return id }
        }
        let id = "\(ProcessInfo.processInfo.hostName)-\(SecretGenerator.token(length: 8))"
        try (id + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return id
    }

    /// The token signing secret an earlier Tern kept in this folder (`signing-secret`,
    /// base64), which the store adopts when it has none yet: tokens already sent stay valid.
    func earlierSigningSecret() -> [UInt8]? {
        readSecret(signingSecretPath, minimumLength: 32)
    }

    /// The webhook signing secret an earlier Tern kept in this folder (`webhook-secret`).
    func earlierWebhookSecret() -> [UInt8]? {
        readSecret((path as NSString).appendingPathComponent("webhook-secret"), minimumLength: 16)
    }

    /// 32 random bytes, for a secret the store does not have yet.
    static func newSecret() -> [UInt8] {
        SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }

    private func readSecret(_ path: String, minimumLength: Int) -> [UInt8]? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let data = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), data.count >= minimumLength
        else { return nil }
        return [UInt8](data)
    }

    private func writeSecretFile(_ path: String, contents: String) throws {
        let created = FileManager.default.createFile(
            atPath: path, contents: Data(contents.utf8), attributes: [.posixPermissions: 0o600])
        if !created { throw ConfigurationError(description: "cannot write \(path)") }
    }
}
