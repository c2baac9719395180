public import SMTPCore
public import TernCore

/// Who may send for which domain (issue: no relay of forged senders). A message's
/// envelope sender (at MAIL FROM) and its `From` domain (at the end of DATA) must each:
/// - belong to one of the credential's domains, when the credential names any; and
/// - belong to a sending domain that is verified (`tern domain verify`), unless unverified
///   domains may send (`sending.allow_unverified_domains`; by default only on a set-up
///   whose listeners are all on loopback, for development).
///
/// "Belongs" is the domain itself or a subdomain. The null reverse path (`<>`) is not
/// checked: it has no domain, and only the `From` check applies.
///
/// Whatever else allows it, a sending domain of one tenant is never used by another's
/// credential (it would be signed with that tenant's keys and counted as its mail).
public struct SenderPolicy: Sendable {
    public var allowUnverifiedDomains: Bool

    public init(allowUnverifiedDomains: Bool) {
        self.allowUnverifiedDomains = allowUnverifiedDomains
    }

    static let refused = EnhancedStatusCode(class: 5, subject: 7, detail: 1)

    /// Who is sending.
    public enum Sender: Sendable {
        /// No identity (a server that does not require one).
        case anonymous
        case credential(Credential)
        /// A credential removed since the session began: it may send for no domain.
        case unknownCredential(String)
    }

    /// nil when `sender` may send for `domain` (`what` names the checked field in the reply).
    public func refusal(domain: String, what: String, credential sender: Sender, owner: SendingDomain?) -> SMTPReply? {
        let domain = domain.lowercased()
        if case .unknownCredential(let name) = sender {
            return SMTPReply(code: 550, Self.refused, "credential \(name) no longer exists")
        }
        if case .credential(let credential) = sender, let owner, credential.scope.tenant != owner.tenant {
            return SMTPReply(code: 550, Self.refused, "\(what) domain \(domain) is not a sending domain of credential \(credential.name)'s tenant")
        }
        if case .credential(let credential) = sender, !credential.domains.isEmpty,
            !credential.domains.contains(where: { domain == $0 || domain.hasSuffix("." + $0) })
        {
            return SMTPReply(
                code: 550, Self.refused,
                "\(what) domain \(domain) is not one credential \(credential.name) may send for (\(credential.domains.joined(separator: ", ")))")
        }
        if allowUnverifiedDomains { return nil }
        guard let owner else {
            return SMTPReply(code: 550, Self.refused, "\(what) domain \(domain) is not a sending domain of this server (tern domain add)")
        }
        guard owner.verifiedAt != nil else {
            return SMTPReply(code: 550, Self.refused, "\(what) domain \(owner.name) is not verified yet (tern domain verify \(owner.name))")
        }
        return nil
    }
}
