public import NIOCore

/// A server reply that does not follow the grammar, or breaks a limit.
///
/// The client treats it as a broken conversation: pending recipients are deferred.
public struct SMTPReplyParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let rawValue: String
        /// A line longer than the limit (RFC 5321 §4.5.3.1.5), including CRLF.
        public static let lineTooLong = Code(rawValue: "lineTooLong")
        /// More lines in one reply than the limit.
        public static let tooManyLines = Code(rawValue: "tooManyLines")
        /// A line that does not start with a three-digit code followed by SP, "-" or CRLF.
        public static let invalidReplyCode = Code(rawValue: "invalidReplyCode")
        /// The lines of one multi-line reply carry different codes (RFC 5321 §4.2.1).
        public static let inconsistentReplyCode = Code(rawValue: "inconsistentReplyCode")
        /// A bare CR or LF inside a line: only CRLF ends a line (RFC 5321 §2.3.8).
        public static let bareLineEnding = Code(rawValue: "bareLineEnding")
        public var description: String { rawValue }
    }

    public var code: Code
    /// Short human text for logs.
    public var hint: String

    public init(_ code: Code, _ hint: String) {
        self.code = code
        self.hint = hint
    }

    public var description: String { "\(code): \(hint)" }
}

/// Parses server replies: `*( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF`.
///
/// Enhanced status codes are not split off here: whether the text starts with one depends on the
/// server's EHLO (ENHANCEDSTATUSCODES, RFC 2034 §3), so the session does that with
/// `SMTPReply.extractingEnhancedStatusCode()`.
/// - SeeAlso: RFC 5321 §4.2, §4.2.1, §4.5.3.1.5
public enum SMTPReplyParser {
    /// Longest reply line, including CRLF (RFC 5321 §4.5.3.1.5).
    public static let defaultMaxLineLength = 512
    /// Most lines in one reply (an EHLO reply with every extension has fewer than 30).
    public static let defaultMaxLines = 100

    /// Parses one complete reply from the front of `buffer` and moves the reader index past it.
    ///
    /// Returns nil, leaving the reader index untouched, when the reply is not complete yet.
    public static func parseReply(
        _ buffer: inout ByteBuffer,
        maxLineLength: Int = defaultMaxLineLength,
        maxLines: Int = defaultMaxLines
    ) throws(SMTPReplyParseError) -> SMTPReply? {
        let view = buffer.readableBytesView
        var lineStart = view.startIndex
        var code: Int?
        var lines: [String] = []
        while true {
            // Find the CRLF ending this line, within the limit.
            var index = lineStart
            var lineEnd: Int?
            while index < view.endIndex {
                let byte = view[index]
                if byte == UInt8(ascii: "\r") {
                    guard index + 1 < view.endIndex else { break }
                    guard view[index + 1] == UInt8(ascii: "\n") else {
                        throw SMTPReplyParseError(.bareLineEnding, "CR without LF in a reply line")
                    }
                    lineEnd = index
                    break
                }
                if byte == UInt8(ascii: "\n") {
                    throw SMTPReplyParseError(.bareLineEnding, "LF without CR in a reply line")
                }
                index += 1
                if index - lineStart > maxLineLength - 2 { break }
            }
            guard let lineEnd else {
                if index - lineStart > maxLineLength - 2 {
                    throw SMTPReplyParseError(.lineTooLong, "reply line longer than \(maxLineLength) octets")
                }
                return nil
            }
            let line = view[lineStart..<lineEnd]
            let (lineCode, isLast, text) = try parseLine(line)
            if let code, code != lineCode {
                throw SMTPReplyParseError(.inconsistentReplyCode, "reply lines carry \(code) and \(lineCode)")
            }
            code = lineCode
            lines.append(text)
            lineStart = lineEnd + 2
            if isLast {
                buffer.moveReaderIndex(forwardBy: lineStart - view.startIndex)
                return SMTPReply(code: lineCode, nil, lines: lines)
            }
            if lines.count >= maxLines {
                throw SMTPReplyParseError(.tooManyLines, "reply longer than \(maxLines) lines")
            }
        }
    }

    /// `Reply-code [ ( SP / "-" ) textstring ]`, without CRLF.
    static func parseLine(_ line: ByteBufferView.SubSequence) throws(SMTPReplyParseError) -> (Int, Bool, String) {
        let start = line.startIndex
        guard line.count >= 3,
              (UInt8(ascii: "2")...UInt8(ascii: "5")).contains(line[start]),
              isDigit(line[start + 1]), isDigit(line[start + 2])
        else {
            throw SMTPReplyParseError(.invalidReplyCode, "reply line does not start with a reply code")
        }
        let code = Int(line[start] - 48) * 100 + Int(line[start + 1] - 48) * 10 + Int(line[start + 2] - 48)
        guard line.count > 3 else { return (code, true, "") }
        let separator = line[start + 3]
        guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else {
            throw SMTPReplyParseError(.invalidReplyCode, "reply code not followed by SP or \"-\"")
        }
        let text = String(decoding: line[(start + 4)...], as: UTF8.self)
        return (code, separator == UInt8(ascii: " "), text)
    }
}

extension SMTPReply {
    /// The reply with its enhanced status code taken from the start of its text, when every
    /// line starts with the same `class.subject.detail` whose class matches the reply code.
    ///
    /// Use only when the server advertised ENHANCEDSTATUSCODES.
    /// - SeeAlso: RFC 2034 §4, RFC 3463 §2
    public func extractingEnhancedStatusCode() -> SMTPReply {
        guard enhancedStatusCode == nil, let first = lines.first,
              let (status, _) = EnhancedStatusCode.parsePrefix(first),
              status.statusClass == code / 100
        else { return self }
        var stripped: [String] = []
        stripped.reserveCapacity(lines.count)
        for line in lines {
            if let (lineStatus, rest) = EnhancedStatusCode.parsePrefix(line), lineStatus == status {
                stripped.append(rest)
            } else {
                stripped.append(line)
            }
        }
        return SMTPReply(code: code, status, lines: stripped)
    }

    /// The text lines joined with a space, as one would quote the remote's words.
    public var text: String { lines.joined(separator: " ") }
}

extension EnhancedStatusCode {
    /// `status-code = class "." subject "." detail` at the start of `text`, followed by SP or the end.
    /// Returns the code and the text after it (and its space).
    /// - SeeAlso: RFC 3463 §2
    static func parsePrefix(_ text: String) -> (EnhancedStatusCode, String)? {
        let bytes = Array(text.utf8.prefix(12))
        var numbers: [Int] = []
        var current = -1
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if isDigit(byte) {
                current = max(current, 0) * 10 + Int(byte - 48)
                guard current < 1000 else { return nil }
            } else if byte == UInt8(ascii: "."), current >= 0, numbers.count < 2 {
                numbers.append(current)
                current = -1
            } else {
                break
            }
            index += 1
        }
        guard numbers.count == 2, current >= 0, [2, 4, 5].contains(numbers[0]) else { return nil }
        guard index == bytes.count || bytes[index] == UInt8(ascii: " ") else { return nil }
        let restStart = index < bytes.count ? index + 1 : index
        let rest = String(decoding: Array(text.utf8)[restStart...], as: UTF8.self)
        return (EnhancedStatusCode(class: numbers[0], subject: numbers[1], detail: current), rest)
    }
}

/// Splits the server's byte stream into replies.
///
/// - SeeAlso: RFC 5321 §4.2
public struct SMTPReplyDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = SMTPReply

    public let maxLineLength: Int
    public let maxLines: Int

    public init(
        maxLineLength: Int = SMTPReplyParser.defaultMaxLineLength,
        maxLines: Int = SMTPReplyParser.defaultMaxLines
    ) {
        self.maxLineLength = maxLineLength
        self.maxLines = maxLines
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> SMTPReply? {
        try SMTPReplyParser.parseReply(&buffer, maxLineLength: maxLineLength, maxLines: maxLines)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> SMTPReply? {
        try decode(buffer: &buffer)
    }
}
