public import NIOCore
public import SMTPCore

/// One message to send on an `SMTPClientConnection`: its envelope and its content.
public struct SMTPOutgoingMessage: Sendable {
    /// The content as written in RFC 5322 form with CRLF line ends, not dot-stuffed.
    public enum Content: Sendable {
        case buffer(ByteBuffer)
        /// Read piece by piece as it is written, e.g. streamed from the store.
        case chunks(SMTPContentChunks)
    }

    public var envelope: SMTPOutgoingEnvelope
    public var content: Content

    public init(envelope: SMTPOutgoingEnvelope, content: Content) {
        self.envelope = envelope
        self.content = content
    }

    /// A message held in one buffer; the envelope's size is the buffer's.
    public init(
        from reversePath: SMTPReversePath,
        to recipients: [SMTPMailbox],
        content: ByteBuffer,
        needsEightBitMIME: Bool? = nil,
        needsSMTPUTF8: Bool = false
    ) {
        let eightBit = needsEightBitMIME ?? content.readableBytesView.contains { $0 >= 0x80 }
        self.envelope = SMTPOutgoingEnvelope(
            reversePath: reversePath, recipients: recipients, contentSize: content.readableBytes,
            needsEightBitMIME: eightBit, needsSMTPUTF8: needsSMTPUTF8
        )
        self.content = .buffer(content)
    }
}

/// Any sequence of content pieces, read once while the message is written.
public struct SMTPContentChunks: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    private let makeNext: @Sendable () -> (() async throws -> ByteBuffer?)

    public init<Chunks: AsyncSequence & Sendable>(_ chunks: Chunks) where Chunks.Element == ByteBuffer {
        makeNext = {
            let box = IteratorBox(chunks.makeAsyncIterator())
            return { try await box.next() }
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let nextChunk: () async throws -> ByteBuffer?

        public mutating func next() async throws -> ByteBuffer? {
            try await nextChunk()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(nextChunk: makeNext())
    }

    private final class IteratorBox<Iterator: AsyncIteratorProtocol> where Iterator.Element == ByteBuffer {
        var iterator: Iterator

        init(_ iterator: Iterator) {
            self.iterator = iterator
        }

        func next() async throws -> ByteBuffer? {
            try await iterator.next()
        }
    }
}
