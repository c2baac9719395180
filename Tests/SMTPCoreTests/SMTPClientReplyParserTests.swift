import NIOCore
import NIOTestUtils
import Testing
import TernCore

@testable import SMTPCore

struct SMTPClientReplyParserTests {
    enum Expected: Sendable, CustomStringConvertible {
        case reply(SMTPReply, rest: Int)
        case incomplete
        case failure(SMTPReplyParseError.Code)

        var description: String {
            switch self {
            case .reply(let reply, let rest): "reply \(reply.code) \(reply.lines) rest \(rest)"
            case .incomplete: "incomplete"
            case .failure(let code): "failure \(code)"
            }
        }
    }

    static let cases: [(String, Expected)] = [
        ("220 mx.example ESMTP\r\n", .reply(SMTPReply(code: 220, nil, "mx.example ESMTP"), rest: 0)),
        ("250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n", .reply(SMTPReply(code: 250, nil, lines: ["mx.example", "PIPELINING", "SIZE 1000"]), rest: 0)),
        ("250 Ok\r\n250 Ok\r\n", .reply(SMTPReply(code: 250, nil, "Ok"), rest: 8)),
        ("250\r\n", .reply(SMTPReply(code: 250, nil, ""), rest: 0)),
        ("250 \r\n", .reply(SMTPReply(code: 250, nil, ""), rest: 0)),
        ("354 End data with <CR><LF>.<CR><LF>\r\n", .reply(SMTPReply(code: 354, nil, "End data with <CR><LF>.<CR><LF>"), rest: 0)),
        ("550 5.1.1 caf\u{e9} unknown\r\n", .reply(SMTPReply(code: 550, nil, "5.1.1 caf\u{e9} unknown"), rest: 0)),
        ("", .incomplete),
        ("25", .incomplete),
        ("250 Ok", .incomplete),
        ("250 Ok\r", .incomplete),
        ("250-first\r\n", .incomplete),
        ("250-first\r\n250-sec", .incomplete),
        ("250 Ok\n", .failure(.bareLineEnding)),
        ("250 O\rk\r\n", .failure(.bareLineEnding)),
        ("250-a\r\n251 b\r\n", .failure(.inconsistentReplyCode)),
        ("hello\r\n", .failure(.invalidReplyCode)),
        ("2500 x\r\n", .failure(.invalidReplyCode)),
        ("650 x\r\n", .failure(.invalidReplyCode)),
        ("25\r\n", .failure(.invalidReplyCode)),
        ("250 " + String(repeating: "x", count: 508) + "\r\n", .failure(.lineTooLong)),
        ("250 " + String(repeating: "x", count: 600), .failure(.lineTooLong)),
        ("250 " + String(repeating: "x", count: 506) + "\r\n", .reply(SMTPReply(code: 250, nil, String(repeating: "x", count: 506)), rest: 0)),
    ]

    @Test(arguments: cases)
    func parses(input: String, expected: Expected) throws {
        var buffer = ByteBuffer(string: input)
        let before = buffer.readerIndex
        switch expected {
        case .reply(let reply, let rest):
            let parsed = try SMTPReplyParser.parseReply(&buffer)
            #expect(parsed == reply)
            #expect(buffer.readableBytes == rest)
        case .incomplete:
            #expect(try SMTPReplyParser.parseReply(&buffer) == nil)
            #expect(buffer.readerIndex == before)
        case .failure(let code):
            #expect(throws: SMTPReplyParseError.self) { try SMTPReplyParser.parseReply(&buffer) }
            do {
                _ = try SMTPReplyParser.parseReply(&buffer)
            } catch {
                #expect(error.code == code)
            }
        }
    }

    @Test
    func boundsLinesPerReply() {
        var buffer = ByteBuffer(string: String(repeating: "250-x\r\n", count: 5) + "250 y\r\n")
        #expect(throws: SMTPReplyParseError(.tooManyLines, "reply longer than 3 lines")) {
            try SMTPReplyParser.parseReply(&buffer, maxLines: 3)
        }
    }

    static let enhanced: [(SMTPReply, SMTPReply)] = [
        (SMTPReply(code: 250, nil, "2.1.5 Ok"), SMTPReply(code: 250, EnhancedStatusCode(class: 2, subject: 1, detail: 5), "Ok")),
        (
            SMTPReply(code: 550, nil, lines: ["5.1.1 <bob@x>: no such user", "5.1.1 see https://x"]),
            SMTPReply(code: 550, EnhancedStatusCode(class: 5, subject: 1, detail: 1), lines: ["<bob@x>: no such user", "see https://x"])
        ),
        (SMTPReply(code: 451, nil, "4.7.1"), SMTPReply(code: 451, EnhancedStatusCode(class: 4, subject: 7, detail: 1), "")),
        (SMTPReply(code: 250, nil, "Ok"), SMTPReply(code: 250, nil, "Ok")),
        // Class must match the reply code.
        (SMTPReply(code: 550, nil, "4.1.1 odd"), SMTPReply(code: 550, nil, "4.1.1 odd")),
        (SMTPReply(code: 250, nil, "2.0.0Ok"), SMTPReply(code: 250, nil, "2.0.0Ok")),
        (SMTPReply(code: 250, nil, "1.2.3 x"), SMTPReply(code: 250, nil, "1.2.3 x")),
        (SMTPReply(code: 250, nil, "2.0 x"), SMTPReply(code: 250, nil, "2.0 x")),
    ]

    @Test(arguments: enhanced)
    func extractsEnhancedStatusCodes(raw: SMTPReply, expected: SMTPReply) {
        #expect(raw.extractingEnhancedStatusCode() == expected)
    }

    @Test
    func decoderPassesTheVerifier() throws {
        let wire: [(String, SMTPReply)] = [
            ("220 mx.example ESMTP\r\n", SMTPReply(code: 220, nil, "mx.example ESMTP")),
            ("250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n", SMTPReply(code: 250, nil, lines: ["mx.example", "PIPELINING", "8BITMIME"])),
            ("550 5.1.1 no\r\n", SMTPReply(code: 550, nil, "5.1.1 no")),
            ("354 go\r\n", SMTPReply(code: 354, nil, "go")),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(
            stringInputOutputPairs: wire.map { ($0.0, [$0.1]) },
            decoderFactory: { SMTPReplyDecoder() }
        )
    }

    static let capabilities: [(String, String, Bool)] = [
        ("PIPELINING", "pipelining", true),
        ("8BITMIME", "8bitmime", true),
        ("SMTPUTF8", "smtputf8", true),
        ("STARTTLS", "starttls", true),
        ("CHUNKING", "chunking", true),
        ("ENHANCEDSTATUSCODES", "enhanced", true),
        ("SIZE 1000", "size", true),
        ("DSN", "pipelining", false),
    ]

    @Test(arguments: capabilities)
    func readsEHLOKeywords(line: String, flag: String, expected: Bool) {
        let caps = SMTPServerCapabilities(ehloReply: SMTPReply(code: 250, nil, lines: ["mx.example greets you", line]))
        #expect(caps.serverName == "mx.example")
        let value: Bool = switch flag {
        case "pipelining": caps.pipelining
        case "8bitmime": caps.eightBitMIME
        case "smtputf8": caps.smtpUTF8
        case "starttls": caps.startTLS
        case "chunking": caps.chunking
        case "enhanced": caps.enhancedStatusCodes
        default: caps.size
        }
        #expect(value == expected)
    }

    static let sizes: [(String?, Int?)] = [("SIZE 1000", 1000), ("SIZE", nil), ("SIZE 0", nil), ("size 52428800", 52_428_800), (nil, nil), ("SIZE x", nil)]

    @Test(arguments: sizes)
    func readsSize(line: String?, expected: Int?) {
        let caps = SMTPServerCapabilities(ehloReply: SMTPReply(code: 250, nil, lines: ["mx"] + (line.map { [$0] } ?? [])))
        #expect(caps.maxMessageSize == expected)
    }

    @Test
    func readsAuthMechanisms() {
        let caps = SMTPServerCapabilities(ehloReply: SMTPReply(code: 250, nil, lines: ["mx", "AUTH PLAIN login", "AUTH=CRAM-MD5"]))
        #expect(caps.authMechanisms == ["PLAIN", "LOGIN", "CRAM-MD5"])
        let helo = SMTPServerCapabilities(heloReply: SMTPReply(code: 250, nil, "mx.example"))
        #expect(!helo.isExtended && !helo.pipelining && helo.serverName == "mx.example")
    }

    static let commands: [(SMTPCommand, String)] = [
        (.ehlo(domain: "client.example"), "EHLO client.example\r\n"),
        (.helo(domain: "client.example"), "HELO client.example\r\n"),
        (.mail(reversePath: .null, parameters: SMTPMailParameters()), "MAIL FROM:<>\r\n"),
        (
            .mail(reversePath: .mailbox(SMTPMailbox(localPart: "a", domain: "b.example")), parameters: SMTPMailParameters(size: 1234, body: .eightBitMIME, smtpUTF8: true)),
            "MAIL FROM:<a@b.example> SIZE=1234 BODY=8BITMIME SMTPUTF8\r\n"
        ),
        (.rcpt(forwardPath: SMTPMailbox(localPart: "r", domain: "d.example")), "RCPT TO:<r@d.example>\r\n"),
        (.rcpt(forwardPath: SMTPMailbox(localPart: "x\r\nRSET", domain: "d")), "RCPT TO:<x  RSET@d>\r\n"),
        (.data, "DATA\r\n"),
        (.rset, "RSET\r\n"),
        (.quit, "QUIT\r\n"),
        (.startTLS, "STARTTLS\r\n"),
        (.bdat(size: 10, last: true), "BDAT 10 LAST\r\n"),
    ]

    @Test(arguments: commands)
    func encodesCommands(command: SMTPCommand, expected: String) throws {
        var buffer = ByteBuffer()
        buffer.writeSMTPCommand(command)
        #expect(String(buffer: buffer) == expected)
        if !expected.contains("  ") {
            // What we write, our own server's parser reads back.
            #expect(try SMTPCommandParser.parseCommand(String(expected.dropLast(1))) == command)
        }
    }

    static let stuffing: [([String], String)] = [
        (["Subject: x\r\n\r\nbody\r\n"], "Subject: x\r\n\r\nbody\r\n.\r\n"),
        ([".leading\r\n"], "..leading\r\n.\r\n"),
        (["a\r\n.\r\nb\r\n"], "a\r\n..\r\nb\r\n.\r\n"),
        (["a\r\n", ".b\r\n"], "a\r\n..b\r\n.\r\n"),
        (["a\r", "\n.", "b"], "a\r\n..b\r\n.\r\n"),
        (["no final newline"], "no final newline\r\n.\r\n"),
        (["bare\n.lf\r\n"], "bare\n..lf\r\n.\r\n"),
        (["x.y\r\n..z\r\n"], "x.y\r\n...z\r\n.\r\n"),
        ([], ".\r\n"),
        (["a\r\n", ""], "a\r\n.\r\n"),
        (["\r", "\n"], "\r\n.\r\n"),
    ]

    @Test(arguments: stuffing)
    func dotStuffs(chunks: [String], expected: String) {
        var stuffer = SMTPDotStuffer()
        var output = ByteBuffer()
        for chunk in chunks { stuffer.stuff(ByteBuffer(string: chunk), into: &output) }
        stuffer.finish(into: &output)
        #expect(String(buffer: output) == expected)
    }

    /// Random content of periods, CRs, LFs and letters, cut into random chunks, stuffs as the
    /// RFC's rule says octet by octet: a period after every LF (or at the start) is doubled.
    @Test
    func dotStuffingMatchesTheRuleOctetByOctet() {
        var rng = SplitMix64(seed: 0x5EED_D075)
        func next(_ bound: Int) -> Int { Int.random(in: 0..<bound, using: &rng) }
        let alphabet: [UInt8] = Array(".\r\na".utf8)
        for _ in 0..<2000 {
            let content = (0..<next(40)).map { _ in alphabet[next(alphabet.count)] }
            var expected: [UInt8] = []
            var atLineStart = true
            for byte in content {
                if atLineStart && byte == UInt8(ascii: ".") { expected.append(byte) }
                expected.append(byte)
                atLineStart = byte == UInt8(ascii: "\n")
            }
            if !content.isEmpty && content.suffix(2) != [13, 10] { expected += Array("\r\n".utf8) }
            expected += Array(".\r\n".utf8)

            var stuffer = SMTPDotStuffer()
            var output = ByteBuffer()
            var rest = content[...]
            while !rest.isEmpty {
                let piece = rest.prefix(1 + next(8))
                rest = rest.dropFirst(piece.count)
                stuffer.stuff(ByteBuffer(bytes: piece), into: &output)
            }
            stuffer.finish(into: &output)
            #expect(Array(output.readableBytesView) == expected, "content \(content)")
        }
    }
}
