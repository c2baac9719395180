public import NIOCore
public import SMTPCore
public import TernCore

/// One delivery attempt: one message to the recipients of one destination.
public struct DeliveryRequest: Sendable {
    public var messageID: MessageID
    /// The envelope sender: the stored one, or the recipient's VERP address.
    public var reversePath: SMTPReversePath
    /// The recipients' domain (of the first recipient when domains that share their mail
    /// hosts are delivered together): where the route or MX lookup starts.
    public var destination: String
    public var recipients: [DueRecipient]
    /// Read piece by piece while it is sent, as often as the transport needs to.
    public var content: DeliveryContent
    /// The content has octets above 127 (declared with BODY=8BITMIME or found at intake).
    public var eightBitMIME: Bool
    public var smtpUTF8: Bool

    public init(
        messageID: MessageID, reversePath: SMTPReversePath, destination: String, recipients: [DueRecipient], content: DeliveryContent,
        eightBitMIME: Bool, smtpUTF8: Bool
    ) {
        self.messageID = messageID
        self.reversePath = reversePath
        self.destination = destination
        self.recipients = recipients
        self.content = content
        self.eightBitMIME = eightBitMIME
        self.smtpUTF8 = smtpUTF8
    }
}

/// A message's content as delivery reads it: in pieces, from the store, so that a large
/// message is never held whole (and never once per job or recipient) while it is sent.
public struct DeliveryContent: Sendable {
    /// Octets in all.
    public let size: Int
    private let read: @Sendable (_ offset: Int, _ maxLength: Int) async throws -> [UInt8]

    /// Octets read from the store at a time.
    public static let defaultPieceSize = 64 * 1024

    /// `read` returns up to `maxLength` octets from `offset`, `[]` at the end.
    public init(size: Int, read: @escaping @Sendable (_ offset: Int, _ maxLength: Int) async throws -> [UInt8]) {
        self.size = size
        self.read = read
    }

    /// The content of a queued message, read from the store as it is sent.
    public static func stored(_ message: MessageID, size: Int, in store: any DeliveryStore) -> DeliveryContent {
        DeliveryContent(size: size) { offset, maxLength in
            try await store.readContent(of: message, offset: offset, maxLength: maxLength)
        }
    }

    /// Content already in memory (tests, small tools).
    public static func bytes(_ bytes: [UInt8]) -> DeliveryContent {
        DeliveryContent(size: bytes.count) { offset, maxLength in
            guard offset < bytes.count else { return [] }
            return Array(bytes[offset..<min(bytes.count, offset + maxLength)])
        }
    }

    /// The whole content in one buffer, for messages small enough to hold: one read (a
    /// piece one octet longer than the content, so that it comes back short and no second
    /// read is needed to learn the end) and one copy.
    public func whole() async throws -> ByteBuffer {
        var whole = ByteBuffer()
        for try await var piece in pieces(ofSize: size + 1) {
            if whole.readableBytes == 0 { whole = piece } else { whole.writeBuffer(&piece) }
        }
        return whole
    }

    /// The pieces in order; each iteration reads from the start again.
    public func pieces(ofSize pieceSize: Int = DeliveryContent.defaultPieceSize) -> Pieces {
        Pieces(content: self, pieceSize: pieceSize)
    }

    public struct Pieces: AsyncSequence, Sendable {
        public typealias Element = ByteBuffer
        let content: DeliveryContent
        let pieceSize: Int

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(content: content, pieceSize: pieceSize)
        }

        public struct AsyncIterator: AsyncIteratorProtocol {
            let content: DeliveryContent
            let pieceSize: Int
            var offset = 0
            var finished = false

            public mutating func next() async throws -> ByteBuffer? {
                guard !finished else { return nil }
                let piece = try await content.read(offset, pieceSize)
                offset += piece.count
                // A short piece is the last: no read just to learn that the content ended.
                if piece.count < pieceSize { finished = true }
                if piece.isEmpty { return nil }
                return ByteBuffer(bytes: piece)
            }
        }
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
