import NIOCore
import NIOTestUtils
import Testing

@testable import SMTPCore

/// Frames with adjacent content parts merged, so results do not depend on how input was split.
enum FramedOutput: Hashable, Sendable, CustomStringConvertible {
    case line(String)
    case lineTooLong
    case bareLineEnding
    case data(String)
    case dataEnd(SMTPServerFramer.DataEnd)
    case chunk(String)
    case chunkEnd

    var description: String {
        switch self {
        case .line(let text): "line(\(text.debugDescription))"
        case .lineTooLong: "lineTooLong"
        case .bareLineEnding: "bareLineEnding"
        case .data(let text): "data(\(text.debugDescription))"
        case .dataEnd(let end): "dataEnd(cr: \(end.sawBareCR), lf: \(end.sawBareLF), long: \(end.sawLongLine))"
        case .chunk(let text): "chunk(\(text.debugDescription))"
        case .chunkEnd: "chunkEnd"
        }
    }
}

struct FramerCase: CustomStringConvertible, Sendable {
    var name: String
    var mode: SMTPServerFramer.Mode
    var input: String
    var expected: [FramedOutput]
    var maxTextLineLength = 1000
    var description: String { name }
}


/// Runs the framer over `input` split into pieces of `pieceSize` octets (0: all at once).
func runFramer(
    mode: SMTPServerFramer.Mode, input: [UInt8], pieceSize: Int, maxTextLineLength: Int = 1000, maxPartSize: Int = 7
) throws -> [FramedOutput] {
    var framer = SMTPServerFramer(mode: mode, maxTextLineLength: maxTextLineLength, maxPartSize: maxPartSize)
    var buffer = ByteBuffer()
    var output: [FramedOutput] = []
    func append(_ frame: SMTPServerFramer.Frame) {
        switch frame {
        case .line(let line): output.append(.line(String(buffer: line)))
        case .lineTooLong: output.append(.lineTooLong)
        case .bareLineEnding: output.append(.bareLineEnding)
        case .dataPart(let part):
            if case .data(let previous) = output.last {
                output[output.count - 1] = .data(previous + String(buffer: part))
            } else {
                output.append(.data(String(buffer: part)))
            }
        case .dataEnd(let end): output.append(.dataEnd(end))
        case .chunkPart(let part):
            if case .chunk(let previous) = output.last {
                output[output.count - 1] = .chunk(previous + String(buffer: part))
            } else {
                output.append(.chunk(String(buffer: part)))
            }
        case .chunkEnd: output.append(.chunkEnd)
        }
    }
    let size = pieceSize == 0 ? max(input.count, 1) : pieceSize
    var offset = 0
    repeat {
        let end = min(offset + size, input.count)
        buffer.writeBytes(input[offset..<end])
        offset = end
        while let frame = try framer.decode(buffer: &buffer) {
            append(frame)
        }
        // Nothing is held beyond what may still become a line end or a terminator.
        if case .data = framer.mode { #expect(buffer.readableBytes <= 3) }
    } while offset < input.count
    return output
}

struct SMTPServerFramerTests {
    static let noFlags = SMTPServerFramer.DataEnd()
    static let long = String(repeating: "x", count: 600)

    static let cases: [FramerCase] = [
        // Command mode
        .init(name: "one line", mode: .command(maxLineLength: 512), input: "NOOP\r\n", expected: [.line("NOOP")]),
        .init(name: "pipelined lines", mode: .command(maxLineLength: 512), input: "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
              expected: [.line("MAIL FROM:<a@b>"), .line("RCPT TO:<c@d>"), .line("DATA")]),
        .init(name: "incomplete line", mode: .command(maxLineLength: 512), input: "NOOP\r", expected: []),
        .init(name: "empty line", mode: .command(maxLineLength: 512), input: "\r\n", expected: [.line("")]),
        .init(name: "bare LF is not a line end", mode: .command(maxLineLength: 512), input: "NOOP\nQUIT\r\n", expected: [.bareLineEnding]),
        .init(name: "bare CR is not a line end", mode: .command(maxLineLength: 512), input: "NOOP\rQUIT\r\nRSET\r\n", expected: [.bareLineEnding, .line("RSET")]),
        .init(name: "only LF never ends", mode: .command(maxLineLength: 512), input: "NOOP\n", expected: []),
        .init(name: "too long then next", mode: .command(maxLineLength: 512), input: long + "\r\nNOOP\r\n", expected: [.lineTooLong, .line("NOOP")]),
        .init(name: "exactly at limit", mode: .command(maxLineLength: 8), input: "123456\r\n", expected: [.line("123456")]),
        .init(name: "one over limit", mode: .command(maxLineLength: 8), input: "1234567\r\nNOOP\r\n", expected: [.lineTooLong, .line("NOOP")]),
        .init(name: "CR at limit boundary", mode: .command(maxLineLength: 8), input: "1234567\r\r\nNOOP\r\n", expected: [.lineTooLong, .line("NOOP")]),
        // DATA mode
        .init(name: "simple message", mode: .data, input: "Subject: x\r\n\r\nhello\r\n.\r\n",
              expected: [.data("Subject: x\r\n\r\nhello\r\n"), .dataEnd(noFlags)]),
        .init(name: "empty message", mode: .data, input: ".\r\n", expected: [.dataEnd(noFlags)]),
        .init(name: "dot unstuffing", mode: .data, input: "..dot\r\n.x\r\n...\r\n.\r\n",
              expected: [.data(".dot\r\nx\r\n..\r\n"), .dataEnd(noFlags)]),
        .init(name: "commands after end", mode: .data, input: "a\r\n.\r\nQUIT\r\n",
              expected: [.data("a\r\n"), .dataEnd(noFlags), .line("QUIT")]),
        .init(name: "smuggling LF.LF", mode: .data, input: "a\n.\nMAIL FROM:<x@y>\r\n.\r\n",
              expected: [.data("a\n.\nMAIL FROM:<x@y>\r\n"), .dataEnd(.init(sawBareLF: true))]),
        .init(name: "smuggling CR.CR", mode: .data, input: "a\r.\rb\r\n.\r\n",
              expected: [.data("a\r.\rb\r\n"), .dataEnd(.init(sawBareCR: true))]),
        .init(name: "smuggling LF.CRLF", mode: .data, input: "a\n.\r\nb\r\n.\r\n",
              expected: [.data("a\n.\r\nb\r\n"), .dataEnd(.init(sawBareLF: true))]),
        .init(name: "smuggling CRLF.LF", mode: .data, input: "a\r\n.\nb\r\n.\r\n",
              expected: [.data("a\r\n\nb\r\n"), .dataEnd(.init(sawBareLF: true))]),
        .init(name: "dot CR without LF", mode: .data, input: "a\r\n.\rb\r\n.\r\n",
              expected: [.data("a\r\n\rb\r\n"), .dataEnd(.init(sawBareCR: true))]),
        .init(name: "line at text limit", mode: .data, input: "12345678\r\n.\r\n",
              expected: [.data("12345678\r\n"), .dataEnd(noFlags)], maxTextLineLength: 10),
        .init(name: "line over text limit", mode: .data, input: "123456789\r\n.\r\n",
              expected: [.data("123456789\r\n"), .dataEnd(.init(sawLongLine: true))], maxTextLineLength: 10),
        .init(name: "stuffed line counts its dot", mode: .data, input: "..2345678\r\n.\r\n",
              expected: [.data(".2345678\r\n"), .dataEnd(noFlags)], maxTextLineLength: 10),
        // BDAT chunks
        .init(name: "chunk then command", mode: .chunk(5), input: "he\r\noNOOP\r\n",
              expected: [.chunk("he\r\no"), .chunkEnd, .line("NOOP")]),
        .init(name: "chunk is raw", mode: .chunk(6), input: ".\r\n.\r\nRSET\r\n",
              expected: [.chunk(".\r\n.\r\n"), .chunkEnd, .line("RSET")]),
    ]

    @Test(arguments: cases, [0, 1, 2, 5])
    func frames(testCase: FramerCase, pieceSize: Int) throws {
        let output = try runFramer(
            mode: testCase.mode, input: Array(testCase.input.utf8), pieceSize: pieceSize,
            maxTextLineLength: testCase.maxTextLineLength
        )
        #expect(output == testCase.expected)
    }

    @Test
    func emptyChunkEndsAtOnce() throws {
        var framer = SMTPServerFramer(mode: .chunk(0))
        var buffer = ByteBuffer()
        #expect(try framer.decode(buffer: &buffer) == .chunkEnd)
        #expect(framer.mode == .command(maxLineLength: 512))
    }

    @Test
    func partsAreBounded() throws {
        var framer = SMTPServerFramer(mode: .data, maxPartSize: 1024)
        var buffer = ByteBuffer(string: String(repeating: "x", count: 100_000))
        var total = 0
        while let frame = try framer.decode(buffer: &buffer) {
            guard case .dataPart(let part) = frame else { Issue.record("unexpected \(frame)"); return }
            #expect(part.readableBytes <= 1024)
            total += part.readableBytes
        }
        #expect(total == 100_000)
        #expect(buffer.readableBytes == 0)
    }

    @Test
    func discardsOverlongLineWithoutBuffering() throws {
        var framer = SMTPServerFramer(mode: .command(maxLineLength: 512))
        var buffer = ByteBuffer()
        for _ in 0..<100 {
            buffer.writeString(String(repeating: "y", count: 1000))
            #expect(try framer.decode(buffer: &buffer) == nil)
            #expect(buffer.readableBytes < 512)
        }
        buffer.writeString("\r\nNOOP\r\n")
        #expect(try framer.decode(buffer: &buffer) == .lineTooLong)
        #expect(try framer.decode(buffer: &buffer) == .line(ByteBuffer(string: "NOOP")))
    }

    /// Decodes until the framer needs more input; returns the records read whole meanwhile.
    private func recordsRead(_ text: String, by framer: inout SMTPServerFramer, from buffer: inout ByteBuffer) throws -> Int {
        let before = framer.recordsRead
        buffer.writeString(text)
        while try framer.decode(buffer: &buffer) != nil {}
        return framer.recordsRead - before
    }

    /// What the session's per-record deadline counts: whole lines in command mode and in DATA,
    /// `maxPartSize` octets of a BDAT chunk and its end; never the octets of a partial line.
    @Test
    func recordsAreWholeLinesAndChunkPieces() throws {
        var framer = SMTPServerFramer(maxPartSize: 4)
        var buffer = ByteBuffer()
        #expect(try recordsRead("NOOP\r\nNO", by: &framer, from: &buffer) == 1)
        #expect(try recordsRead("O", by: &framer, from: &buffer) == 0)
        #expect(try recordsRead("P\r", by: &framer, from: &buffer) == 0)
        #expect(try recordsRead("\n", by: &framer, from: &buffer) == 1)
        #expect(try recordsRead(String(repeating: "z", count: 600), by: &framer, from: &buffer) == 0)
        #expect(try recordsRead("\r\n", by: &framer, from: &buffer) == 1)

        framer.mode = .data
        #expect(try recordsRead("Subject: x\r\n\r\nlong", by: &framer, from: &buffer) == 2)
        #expect(try recordsRead(" line with a bare \n and \r in it", by: &framer, from: &buffer) == 0)
        #expect(try recordsRead("\r\n..dot\r\n.", by: &framer, from: &buffer) == 2)
        #expect(try recordsRead("\r\n", by: &framer, from: &buffer) == 1)
        #expect(framer.mode == .command(maxLineLength: 512))

        framer.mode = .chunk(10)
        #expect(try recordsRead("012", by: &framer, from: &buffer) == 0)
        #expect(try recordsRead("3456", by: &framer, from: &buffer) == 1)
        #expect(try recordsRead("789", by: &framer, from: &buffer) == 2)  // octets 4 to 7, and the end
    }
}

/// Acts like a session for the verifier: after a `DATA` line it expects message content, after
/// `BDAT n` a chunk, and it delivers whole messages.
struct SessionLikeDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = FramedOutput

    var framer = SMTPServerFramer()
    var content = ByteBuffer()

    mutating func decode(buffer: inout ByteBuffer) throws -> FramedOutput? {
        while let frame = try framer.decode(buffer: &buffer) {
            switch frame {
            case .line(let line):
                let text = String(buffer: line)
                if text == "DATA" {
                    framer.mode = .data
                } else if text.hasPrefix("BDAT "), let size = Int(text.dropFirst(5)) {
                    framer.mode = .chunk(size)
                }
                return .line(text)
            case .lineTooLong: return .lineTooLong
            case .bareLineEnding: return .bareLineEnding
            case .dataPart(var part), .chunkPart(var part):
                content.writeBuffer(&part)
            case .dataEnd(let end):
                defer { content.clear() }
                return .data(String(buffer: content) + " \(end)")
            case .chunkEnd:
                defer { content.clear() }
                return .chunk(String(buffer: content))
            }
        }
        return nil
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> FramedOutput? {
        try decode(buffer: &buffer)
    }
}

struct SMTPServerFramerVerifierTests {
    @Test
    func commandModeWithVerifier() throws {
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [
                (ByteBuffer(string: "EHLO x\r\n"), [SMTPServerFramer.Frame.line(ByteBuffer(string: "EHLO x"))]),
                (ByteBuffer(string: "NOOP\r\nQUIT\r\n"), [.line(ByteBuffer(string: "NOOP")), .line(ByteBuffer(string: "QUIT"))]),
                (ByteBuffer(string: "NO\nOP\r\n"), [.bareLineEnding]),
                (ByteBuffer(string: String(repeating: "z", count: 700) + "\r\n"), [.lineTooLong]),
            ],
            decoderFactory: { SMTPServerFramer() }
        )
    }

    @Test
    func dataAndChunkModeWithVerifier() throws {
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [
                (ByteBuffer(string: "DATA\r\nhello\r\n..x\r\n.\r\n"), [
                    FramedOutput.line("DATA"),
                    .data("hello\r\n.x\r\n \(SMTPServerFramer.DataEnd())"),
                ]),
                (ByteBuffer(string: "DATA\r\na\n.\nb\r\n.\r\nNOOP\r\n"), [
                    .line("DATA"),
                    .data("a\n.\nb\r\n \(SMTPServerFramer.DataEnd(sawBareLF: true))"),
                    .line("NOOP"),
                ]),
                (ByteBuffer(string: "BDAT 3\r\n.\r\nRSET\r\n"), [.line("BDAT 3"), .chunk(".\r\n"), .line("RSET")]),
            ],
            decoderFactory: { SessionLikeDecoder() }
        )
    }
}
