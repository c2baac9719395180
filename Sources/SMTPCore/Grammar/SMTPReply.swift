public import NIOCore

/// An enhanced mail system status code, `class.subject.detail`.
///
/// - SeeAlso: RFC 3463 §2, RFC 2034
public struct EnhancedStatusCode: Sendable, Hashable, CustomStringConvertible {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    public var statusClass: Int
    public var subject: Int
    public var detail: Int

    public init(class statusClass: Int, subject: Int, detail: Int) {
        self.statusClass = statusClass
        self.subject = subject
        self.detail = detail
    }

    public var description: String { "\(statusClass).\(subject).\(detail)" }
}

/// A server reply: a three-digit code, an optional enhanced status code, and one or more text lines.
///
/// - SeeAlso: RFC 5321 §4.2
public struct SMTPReply: Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    /// Written on every line when present (RFC 2034 §4).
    public var enhancedStatusCode: EnhancedStatusCode?
    /// Never empty when encoded; an empty array is written as one empty line.
    public var lines: [String]

    public init(code: Int, _ enhancedStatusCode: EnhancedStatusCode?, lines: [String]) {
        self.code = code
        self.enhancedStatusCode = enhancedStatusCode
        self.lines = lines
    }

    public init(code: Int, _ enhancedStatusCode: EnhancedStatusCode?, _ text: String) {
        self.init(code: code, enhancedStatusCode, lines: [text])
    }

    /// 2yz
    public var isPositiveCompletion: Bool { (200..<300).contains(code) }
    /// 4yz or 5yz
    public var isError: Bool { code >= 400 }

    public var description: String {
        var buffer = ByteBuffer()
        buffer.writeSMTPReply(self)
        return String(buffer: buffer)
    }
}

extension ByteBuffer {
    /// Writes `reply` as `code-text CRLF` lines, the last one `code SP text CRLF`.
    ///
    /// Carriage returns and line feeds inside a text line are replaced by spaces so that
    /// no text (for example a backend's refusal) can inject a reply line.
    /// - SeeAlso: RFC 5321 §4.2.1
    @discardableResult
    public mutating func writeSMTPReply(_ reply: SMTPReply) -> Int {
        let start = writerIndex
        let lines = reply.lines.isEmpty ? [""] : reply.lines
        let code = String(min(max(reply.code, 0), 999))
        for (index, line) in lines.enumerated() {
            writeString(code)
            writeInteger(index == lines.count - 1 ? UInt8(ascii: " ") : UInt8(ascii: "-"))
            if let esc = reply.enhancedStatusCode {
                writeString(esc.description)
                if !line.isEmpty { writeInteger(UInt8(ascii: " ")) }
            }
            for byte in line.utf8 {
                writeInteger(byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") ? UInt8(ascii: " ") : byte)
            }
            writeStaticString("\r\n")
        }
        return writerIndex - start
    }
}
