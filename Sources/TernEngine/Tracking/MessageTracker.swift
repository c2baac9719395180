public import Logging
import MailMessage
public import TernCore

/// Intake's tracking step, before anything signs the message: removes the `X-Tern-Track`
/// control header, and for a tracked message gives each recipient a copy of its own with
/// an open pixel, rewritten links and `List-Unsubscribe` headers that carry that
/// recipient's tokens.
///
/// Rewriting never refuses mail: a message that cannot be rewritten is queued as it came
/// (without the control header), and the reason is logged.
public struct MessageTracker: Sendable {
    public struct Configuration: Sendable {
        /// What is tracked for a credential without its own entry.
        public var defaultFeatures: TrackingFeatures
        /// Credential name → what is tracked for it.
        public var perCredential: [String: TrackingFeatures]
        /// Where the tracking endpoints are served, e.g. `https://t.example.com`.
        public var publicURL: String
        /// The body placeholder replaced by the unsubscribe URL.
        public var placeholder: String
        /// Where the unsubscribe `mailto:` address of each sending domain is.
        public var returnPaths: ReturnPaths
        /// What a sending domain tracks when the message and its credential do not say
        /// (the store's `tern domain add --track`); nil: `defaultFeatures`.
        public var domainFeatures: @Sendable (String) -> TrackingFeatures?

        public init(
            defaultFeatures: TrackingFeatures = [], perCredential: [String: TrackingFeatures] = [:], publicURL: String,
            placeholder: String = MessageTracker.defaultPlaceholder, returnPaths: ReturnPaths = ReturnPaths(),
            domainFeatures: @escaping @Sendable (String) -> TrackingFeatures? = { _ in nil }
        ) {
            self.returnPaths = returnPaths
            self.domainFeatures = domainFeatures
            self.defaultFeatures = defaultFeatures
            self.perCredential = perCredential
            self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
            self.placeholder = placeholder
        }
    }

    /// The header a sender uses to choose tracking for one message: `opens,clicks,unsubscribe`,
    /// `all` or `none`. Tern removes it before delivery.
    public static let controlHeader = "X-Tern-Track"
    public static let defaultPlaceholder = TrackingOptions.defaultUnsubscribePlaceholder

    private let configuration: Configuration
    private let keys: TrackingKeys
    private let rememberLinks: @Sendable (MessageID, [String]) -> Void
    private let logger: Logger

    /// `rememberLinks` hears each tracked message's link targets (the click endpoint's table).
    public init(
        configuration: Configuration, keys: TrackingKeys, logger: Logger,
        rememberLinks: @escaping @Sendable (MessageID, [String]) -> Void = { _, _ in }
    ) {
        self.configuration = configuration
        self.keys = keys
        self.logger = logger
        self.rememberLinks = rememberLinks
    }

    /// What to track for a message of `credential` from `domain` whose control header says
    /// `control`: the header, else the credential's entry, else the domain's, else the default.
    func features(credential: String?, domain: String = "", control: String?) -> TrackingFeatures {
        if let control {
            if let features = TrackingFeatures(list: control) { return features }
            logger.warning("ignoring \(Self.controlHeader): '\(control)' (use opens, clicks, unsubscribe, all or none)")
        }
        return credential.flatMap { configuration.perCredential[$0] } ?? configuration.domainFeatures(domain)
            ?? configuration.defaultFeatures
    }

    /// The messages to commit for `message`: itself (with its sending domain filled in and the
    /// control header removed), or one tracked copy per recipient.
    public func track(_ message: QueuedMessage) -> [QueuedMessage] {
        let header = MailMessage(Self.headerSection(of: message.content))
        var message = message
        if message.fromDomain.isEmpty { message.fromDomain = header.fromDomain ?? Self.domain(of: message.mailFrom) }
        let control = header.header.value(Self.controlHeader)
        let features = features(credential: message.credential, domain: message.fromDomain, control: control)
        guard !features.isEmpty else {
            guard control != nil else { return [message] }
            if let rewritten = rewrite(message, TrackingOptions(removedHeaderFields: [Self.controlHeader])) {
                message.content = rewritten.bytes
            }
            return [message]
        }
        let hasListUnsubscribe = header.header.contains("List-Unsubscribe")
        var copies: [QueuedMessage] = []
        for (index, recipient) in message.recipients.enumerated() {
            var copy = message
            copy.id = index == 0 ? message.id : MessageID.next()
            copy.recipients = [recipient]
            guard let tracked = rewrite(copy, options(for: copy, recipient.id, features, addListUnsubscribe: !hasListUnsubscribe)) else {
                // Untracked, but still without the control header when that can be done.
                if let plain = rewrite(message, TrackingOptions(removedHeaderFields: [Self.controlHeader])) {
                    message.content = plain.bytes
                }
                return [message]
            }
            copy.content = tracked.bytes
            copy.links = tracked.originalLinks
            copies.append(copy)
        }
        for copy in copies where !copy.links.isEmpty {
            rememberLinks(copy.id, copy.links)
        }
        return copies
    }

    private func options(
        for message: QueuedMessage, _ recipient: RecipientID, _ features: TrackingFeatures, addListUnsubscribe: Bool
    ) -> TrackingOptions {
        let base = configuration.publicURL
        var options = TrackingOptions(unsubscribePlaceholder: configuration.placeholder, removedHeaderFields: [Self.controlHeader])
        if features.contains(.clicks) {
            let keys = self.keys
            let messageID = message.id
            options.clickTracking = { _, index in
                base + "/c/" + keys.token(TrackingToken(kind: .click, messageID: messageID, recipientID: recipient, linkIndex: index))
            }
        }
        if features.contains(.opens) {
            options.openPixelURL = base + "/o/" + keys.token(TrackingToken(kind: .open, messageID: message.id, recipientID: recipient))
        }
        if features.contains(.unsubscribe) {
            let token = keys.token(TrackingToken(kind: .unsubscribe, messageID: message.id, recipientID: recipient))
            let url = base + "/u/" + token
            options.unsubscribeURL = url
            if addListUnsubscribe {
                // RFC 2369 §3.2 (both forms, the URL first) and RFC 8058 §3.1 (one click).
                var value = "<\(url)>"
                if !message.fromDomain.isEmpty {
                    let mailbox = keys.addressToken(TrackingToken(kind: .unsubscribe, messageID: message.id, recipientID: recipient))
                    let address = configuration.returnPaths.unsubscribeAddress(token: mailbox, sendingDomain: message.fromDomain)
                    value += ", <mailto:\(address)>"
                }
                options.addedHeaderFields = [
                    AddedHeaderField(name: "List-Unsubscribe", value: value),
                    AddedHeaderField(name: "List-Unsubscribe-Post", value: "List-Unsubscribe=One-Click"),
                ]
            }
        }
        return options
    }

    private func rewrite(_ message: QueuedMessage, _ options: TrackingOptions) -> TrackedMessage? {
        do {
            return try TrackingRewriter.rewrite(message.content, options: options)
        } catch {
            logger.warning("message \(message.id) is queued untracked: \(error)")
            return nil
        }
    }

    /// The header section (through the empty line), enough to read the header fields.
    static func headerSection(of content: [UInt8]) -> [UInt8] {
        var index = 0
        var atLineStart = true
        while index < content.count {
            let byte = content[index]
            if atLineStart {
                if byte == UInt8(ascii: "\n") { return Array(content[...index]) }
                if byte == UInt8(ascii: "\r"), index + 1 < content.count, content[index + 1] == UInt8(ascii: "\n") {
                    return Array(content[...(index + 1)])
                }
            }
            atLineStart = byte == UInt8(ascii: "\n")
            index += 1
        }
        return content
    }

    static func domain(of address: String) -> String {
        guard let at = address.lastIndex(of: "@") else { return "" }
        return address[address.index(after: at)...].lowercased()
    }
}
