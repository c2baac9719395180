public import SMTPCore
public import TernCore

/// The envelope sender of each recipient's copy: `b-TOKEN@RETURN_PATH_DOMAIN`, where the
/// token is the recipient's signed bounce token in its address form. A bounce or an
/// auto-reply sent to it names the recipient without any lookup; the `From` header is
/// left as it is.
///
/// A message sent with the null reverse path (`MAIL FROM:<>`) keeps it: it must never be
/// answered (RFC 5321 §4.5.5).
/// - SeeAlso: RFC 5321 §4.5.5, VERP (D. J. Bernstein, 1997)
public struct VERPReturnPath: Sendable {
    public let keys: TrackingKeys
    public let returnPaths: ReturnPaths

    public init(keys: TrackingKeys, returnPaths: ReturnPaths) {
        self.keys = keys
        self.returnPaths = returnPaths
    }

    /// Built from its parts, not from text; the stored sender (parsed at intake) is taken as it is.
    public func envelopeSender(for recipient: DueRecipient) -> SMTPReversePath {
        let sendingDomain = recipient.fromDomain.isEmpty ? Self.domain(of: recipient.mailFrom) : recipient.fromDomain
        guard !recipient.mailFrom.isEmpty, !sendingDomain.isEmpty else { return SMTPReversePath(validated: recipient.mailFrom) }
        let token = keys.addressToken(
            TrackingToken(kind: .bounce, messageID: recipient.messageID, recipientID: recipient.id))
        return .mailbox(SMTPMailbox(
            localPart: ReturnPaths.bouncePrefix + token, domain: returnPaths.domain(forSendingDomain: sendingDomain)))
    }

    static func domain(of address: String) -> String {
        guard let at = address.lastIndex(of: "@") else { return "" }
        return address[address.index(after: at)...].lowercased()
    }
}
