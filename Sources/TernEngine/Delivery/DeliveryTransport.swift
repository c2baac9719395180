public import TernCore

/// One delivery attempt: one message to the recipients of one destination.
public struct DeliveryRequest: Sendable {
    public var messageID: MessageID
    public var mailFrom: String
    /// The recipients' domain (of the first recipient when domains that share their mail
    /// hosts are delivered together): where the route or MX lookup starts.
    public var destination: String
    public var recipients: [DueRecipient]
    public var content: [UInt8]
    public var eightBitMIME: Bool
    public var smtpUTF8: Bool

    public init(
        messageID: MessageID, mailFrom: String, destination: String, recipients: [DueRecipient], content: [UInt8],
        eightBitMIME: Bool, smtpUTF8: Bool
    ) {
        self.messageID = messageID
        self.mailFrom = mailFrom
        self.destination = destination
        self.recipients = recipients
        self.content = content
        self.eightBitMIME = eightBitMIME
        self.smtpUTF8 = smtpUTF8
    }
}

/// What an attempt did for one recipient, with the remote's own words in `details`
/// (`remote_host`, `code`, `enhanced_code`, `text`, `tls`, `bounce_class`).
public enum TransportOutcome: Sendable, Equatable {
    case sent(details: [String: String])
    case failed(details: [String: String])
    case deferred(reason: String, kind: DeferralKind, details: [String: String])
}

/// Sends one request and says what happened to each of its recipients. Never throws:
/// every problem is an outcome (usually a deferral).
public protocol DeliveryTransport: Sendable {
    func deliver(_ request: DeliveryRequest) async -> [RecipientID: TransportOutcome]

    /// The destination (concurrency bucket) of a recipient domain: where its mail goes,
    /// e.g. its MX host set. nil when it cannot be told (DNS trouble): the domain is its
    /// own destination then. The default keys every domain by itself.
    func destinationKey(forDomain domain: String) async -> DestinationKey?
}

extension DeliveryTransport {
    public func destinationKey(forDomain domain: String) async -> DestinationKey? { nil }
}

extension TransportOutcome {
    /// `hard` for a permanent failure of the address or domain (5.1.x), `soft` otherwise
    /// (mailbox full, policy, content), from the RFC 3463 enhanced status code.
    public static func bounceClass(enhancedCode: String?) -> String {
        guard let code = enhancedCode else { return "soft" }
        let parts = code.split(separator: ".")
        guard parts.count == 3, parts[0] == "5" else { return "soft" }
        switch parts[1] {
        case "1": return "hard"  // addressing: bad mailbox, domain, null MX
        default: return "soft"
        }
    }
}
