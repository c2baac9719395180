public import NIOCore

/// Splits the client's byte stream into command lines, DATA content and BDAT chunks.
///
/// The session sets `mode` synchronously before asking for the next frame: a command line
/// is followed by DATA content only after the server has replied 354, and by a chunk only
/// after `BDAT n`. After the end of DATA and after a chunk, the framer returns to command mode
/// by itself.
///
/// Only CRLF ends a line, in every mode. A bare CR or LF is never a line end, so that
/// `<LF>.<LF>`, `<CR>.<CR>` and `<LF>.<CR><LF>` inside DATA are content, not the end of the
/// message (SMTP smuggling). Content streams out in bounded parts; nothing is collected here.
/// - SeeAlso: RFC 5321 §2.3.8, §4.1.1.4, §4.5.2; RFC 3030 §2
public struct SMTPServerFramer: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = Frame

    public static let defaultMaxPartSize = 16_384

    public enum Mode: Sendable, Hashable {
        /// One line per CRLF; longer lines (including CRLF) are discarded and reported.
        case command(maxLineLength: Int)
        /// Message content after 354, dot-unstuffed, up to `CRLF.CRLF`.
        case data
        /// Exactly this many raw octets (BDAT).
        case chunk(Int)
    }

    /// What the framer noticed in one message's content.
    public struct DataEnd: Sendable, Hashable {
        /// A CR not followed by LF.
        public var sawBareCR: Bool
        /// An LF not preceded by CR.
        public var sawBareLF: Bool
        /// A text line longer than the limit (including CRLF).
        public var sawLongLine: Bool

        public init(sawBareCR: Bool = false, sawBareLF: Bool = false, sawLongLine: Bool = false) {
            self.sawBareCR = sawBareCR
            self.sawBareLF = sawBareLF
            self.sawLongLine = sawLongLine
        }

        public var sawBareLineEnding: Bool { sawBareCR || sawBareLF }
    }

    public enum Frame: Sendable, Hashable {
        /// A command line, without its CRLF.
        case line(ByteBuffer)
        /// A command line longer than the limit; it was discarded up to its CRLF.
        case lineTooLong
        /// A command line containing a bare CR or LF; it was discarded up to its CRLF.
        case bareLineEnding
        /// A piece of DATA content, dot-unstuffed, CRLF line ends kept.
        case dataPart(ByteBuffer)
        /// `CRLF.CRLF` was read. The final CRLF of the last line is part of the content.
        case dataEnd(DataEnd)
        /// A piece of a BDAT chunk.
        case chunkPart(ByteBuffer)
        /// The whole chunk has been read.
        case chunkEnd
    }

    public var mode: Mode {
        didSet {
            switch mode {
            case .command(let maxLineLength):
                commandLineLimit = maxLineLength
            case .data:
                if oldValue != .data { resetDataState() }
                discardingLongLine = false
            case .chunk:
                if case .chunk = oldValue {} else { chunkRecordLength = 0 }
                discardingLongLine = false
            }
        }
    }

    public let maxTextLineLength: Int
    public let maxPartSize: Int

    /// Records read whole so far (wrapping): a command line (too long or not), a DATA line
    /// (the final `.` line included), or `maxPartSize` octets of a BDAT chunk and the chunk's
    /// end. The session's timeouts are deadlines per record, as Postfix's
    /// `smtpd_per_record_deadline`: a record must arrive whole in time, however its octets trickle.
    public private(set) var recordsRead = 0

    private var commandLineLimit: Int
    /// Octets of the current BDAT chunk since its last record.
    private var chunkRecordLength = 0
    private var discardingLongLine = false
    private var atLineStart = true
    private var lineLength = 0
    private var dataFlags = DataEnd()

    public init(
        mode: Mode = .command(maxLineLength: SMTPServerLimits.defaultMaxCommandLineLength),
        maxTextLineLength: Int = SMTPServerLimits.defaultMaxTextLineLength,
        maxPartSize: Int = Self.defaultMaxPartSize
    ) {
        self.mode = mode
        self.maxTextLineLength = maxTextLineLength
        self.maxPartSize = max(maxPartSize, 1)
        if case .command(let limit) = mode {
            self.commandLineLimit = limit
        } else {
            self.commandLineLimit = SMTPServerLimits.defaultMaxCommandLineLength
        }
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> Frame? {
        switch mode {
        case .command(let maxLineLength):
            return decodeCommand(buffer: &buffer, maxLineLength: max(maxLineLength, 2))
        case .data:
            return decodeData(buffer: &buffer)
        case .chunk(let remaining):
            return decodeChunk(buffer: &buffer, remaining: remaining)
        }
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> Frame? {
        try decode(buffer: &buffer)
    }

    // MARK: Command lines

    private mutating func decodeCommand(buffer: inout ByteBuffer, maxLineLength: Int) -> Frame? {
        while true {
            if discardingLongLine {
                if let crlf = Self.firstCRLF(in: buffer, limit: buffer.readableBytes) {
                    buffer.moveReaderIndex(forwardBy: crlf + 2)
                    discardingLongLine = false
                    recordsRead &+= 1
                    return .lineTooLong
                }
                buffer.moveReaderIndex(forwardBy: Self.lengthKeepingTrailingCR(buffer))
                return nil
            }
            if let crlf = Self.firstCRLF(in: buffer, limit: min(buffer.readableBytes, maxLineLength)) {
                guard let line = buffer.readSlice(length: crlf) else { return nil }
                buffer.moveReaderIndex(forwardBy: 2)
                recordsRead &+= 1
                let hasBareLineEnding = line.readableBytesView.contains { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") }
                return hasBareLineEnding ? .bareLineEnding : .line(line)
            }
            guard buffer.readableBytes >= maxLineLength else { return nil }
            discardingLongLine = true
        }
    }

    /// Offset of the first CR LF whose LF lies within the first `limit` readable octets.
    private static func firstCRLF(in buffer: ByteBuffer, limit: Int) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            guard limit >= 2 else { return nil }
            var index = 0
            while index + 1 < limit {
                if bytes[index] == UInt8(ascii: "\r") {
                    if bytes[index + 1] == UInt8(ascii: "\n") { return index }
                }
                index += 1
            }
            return nil
        }
    }

    /// How much of the buffer can be dropped while waiting for a CRLF: all but a trailing CR.
    private static func lengthKeepingTrailingCR(_ buffer: ByteBuffer) -> Int {
        let count = buffer.readableBytes
        guard count > 0, buffer.getInteger(at: buffer.readerIndex + count - 1, as: UInt8.self) == UInt8(ascii: "\r") else {
            return count
        }
        return count - 1
    }

    // MARK: DATA content

    private mutating func resetDataState() {
        atLineStart = true
        lineLength = 0
        dataFlags = DataEnd()
    }

    private mutating func endLine() {
        if lineLength > maxTextLineLength { dataFlags.sawLongLine = true }
        lineLength = 0
    }

    // The mail data is terminated by a line containing only a period, that is, the character
    // sequence "<CRLF>.<CRLF>" (RFC 5321 §4.1.1.4). Before sending a line of mail text, the SMTP
    // client checks the first character of the line. If it is a period, one additional period is
    // inserted at the beginning of the line (RFC 5321 §4.5.2).
    private mutating func decodeData(buffer: inout ByteBuffer) -> Frame? {
        let start = buffer.readerIndex
        if atLineStart {
            guard let first = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
            if first == UInt8(ascii: ".") {
                guard let second = buffer.getInteger(at: start + 1, as: UInt8.self) else { return nil }
                if second == UInt8(ascii: "\r") {
                    guard let third = buffer.getInteger(at: start + 2, as: UInt8.self) else { return nil }
                    if third == UInt8(ascii: "\n") {
                        buffer.moveReaderIndex(forwardBy: 3)
                        recordsRead &+= 1
                        let flags = dataFlags
                        resetDataState()
                        mode = .command(maxLineLength: commandLineLimit)
                        return .dataEnd(flags)
                    }
                }
                // A line starting with a period: drop the (stuffing) period, which does not
                // count towards the line length (RFC 5321 §4.5.3.1.6).
                buffer.moveReaderIndex(forwardBy: 1)
            }
            atLineStart = false
        }

        let maxPartSize = self.maxPartSize
        var lineLength = self.lineLength
        var flags = self.dataFlags
        var nextAtLineStart = false
        var linesEnded = 0
        let maxText = maxTextLineLength
        let partLength: Int = buffer.withUnsafeReadableBytes { bytes in
            let available = bytes.count
            let scanLimit = min(available, maxPartSize)
            var index = 0
            while index < scanLimit {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\r") {
                    guard index + 1 < available else { break } // wait for the next octet
                    if bytes[index + 1] == UInt8(ascii: "\n") {
                        lineLength += 2
                        if lineLength > maxText { flags.sawLongLine = true }
                        lineLength = 0
                        linesEnded += 1
                        index += 2
                        // Continue in this part unless the next line may need unstuffing or end the data.
                        if index < available, index < scanLimit, bytes[index] != UInt8(ascii: ".") {
                            continue
                        }
                        nextAtLineStart = true
                        break
                    }
                    flags.sawBareCR = true
                } else if byte == UInt8(ascii: "\n") {
                    flags.sawBareLF = true
                }
                lineLength += 1
                index += 1
            }
            return index
        }
        self.lineLength = lineLength
        self.dataFlags = flags
        self.recordsRead &+= linesEnded
        self.atLineStart = nextAtLineStart
        guard partLength > 0, let part = buffer.readSlice(length: partLength) else {
            return nil // a dropped stuffing period, or a CR waiting for its next octet
        }
        return .dataPart(part)
    }

    // MARK: BDAT chunks

    private mutating func decodeChunk(buffer: inout ByteBuffer, remaining: Int) -> Frame? {
        if remaining <= 0 {
            mode = .command(maxLineLength: commandLineLimit)
            chunkRecordLength = 0
            recordsRead &+= 1
            return .chunkEnd
        }
        let length = min(remaining, buffer.readableBytes, maxPartSize)
        guard length > 0, let part = buffer.readSlice(length: length) else { return nil }
        chunkRecordLength += length
        if chunkRecordLength >= maxPartSize {
            chunkRecordLength -= maxPartSize
            recordsRead &+= 1
        }
        mode = .chunk(remaining - length)
        return .chunkPart(part)
    }
}
