public import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Prepares message content for DATA: doubles a period at the start of a line and ends the
/// content with `CRLF.CRLF`. Works on chunks, so content can stream.
///
/// A line starts after every LF, with or without CR before it, so that content with a bare LF
/// can never end the data early at a server that reads bare LF as a line end (SMTP smuggling).
/// - SeeAlso: RFC 5321 §4.5.2, §4.1.1.4
public struct SMTPDotStuffer: Sendable, Hashable {
    private var atLineStart = true
    private var lastTwo: (UInt8, UInt8) = (UInt8(ascii: "\r"), UInt8(ascii: "\n"))
    private var wroteAnything = false

    public init() {}

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.atLineStart == rhs.atLineStart && lhs.lastTwo == rhs.lastTwo && lhs.wroteAnything == rhs.wroteAnything
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(atLineStart)
        hasher.combine(lastTwo.0)
        hasher.combine(lastTwo.1)
        hasher.combine(wroteAnything)
    }

    /// Appends `chunk`, dot-stuffed, to `output`.
    ///
    /// Jumps from line start to line start (`memchr` finds each LF): only the first octet
    /// of a line is looked at on its own, and the runs between stuffed periods are copied whole.
    public mutating func stuff(_ chunk: ByteBuffer, into output: inout ByteBuffer) {
        let count = chunk.readableBytes
        guard count > 0 else { return }
        output.reserveCapacity(minimumWritableBytes: count + 16)
        var atLineStart = self.atLineStart
        chunk.withUnsafeReadableBytes { bytes in
            var runStart = 0
            var index = 0
            while index < count {
                if atLineStart && bytes[index] == UInt8(ascii: ".") {
                    output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
                    output.writeInteger(UInt8(ascii: "."))
                    runStart = index
                }
                guard let base = bytes.baseAddress,
                    let lineFeed = memchr(base + index, Int32(UInt8(ascii: "\n")), count - index)
                else {
                    atLineStart = false
                    break
                }
                index = UnsafeRawPointer(lineFeed) - base + 1
                atLineStart = true
            }
            output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<count]))
            lastTwo = count >= 2 ? (bytes[count - 2], bytes[count - 1]) : (lastTwo.1, bytes[0])
        }
        self.atLineStart = atLineStart
        wroteAnything = true
    }

    /// Writes the end of the data: a CRLF when the content did not end with one, then `.CRLF`.
    public func finish(into output: inout ByteBuffer) {
        if wroteAnything && lastTwo != (UInt8(ascii: "\r"), UInt8(ascii: "\n")) {
            output.writeStaticString("\r\n")
        }
        output.writeStaticString(".\r\n")
    }

    /// The whole content, dot-stuffed and terminated.
    public static func stuffed(_ content: ByteBuffer) -> ByteBuffer {
        var stuffer = SMTPDotStuffer()
        var output = ByteBuffer()
        stuffer.stuff(content, into: &output)
        stuffer.finish(into: &output)
        return output
    }
}
