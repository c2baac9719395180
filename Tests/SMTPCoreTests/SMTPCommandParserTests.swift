import NIOCore
import Testing

@testable import SMTPCore

struct SMTPCommandParserTests {
    static func mailbox(_ local: String, _ domain: String?) -> SMTPMailbox {
        SMTPMailbox(localPart: local, domain: domain)
    }

    static let valid: [(String, SMTPCommand)] = [
        ("EHLO client.example", .ehlo(domain: "client.example")),
        ("ehlo client.example  ", .ehlo(domain: "client.example")),
        ("EHLO [192.0.2.1]", .ehlo(domain: "[192.0.2.1]")),
        ("HELO x", .helo(domain: "x")),
        ("MAIL FROM:<a@b.example>", .mail(reversePath: .mailbox(mailbox("a", "b.example")), parameters: .init())),
        ("mail from:<a@b.example>", .mail(reversePath: .mailbox(mailbox("a", "b.example")), parameters: .init())),
        ("MAIL FROM: <a@b.example>", .mail(reversePath: .mailbox(mailbox("a", "b.example")), parameters: .init())),
        ("MAIL FROM:<>", .mail(reversePath: .null, parameters: .init())),
        ("MAIL FROM:<@r1.example,@r2.example:a@b.example>", .mail(reversePath: .mailbox(mailbox("a", "b.example")), parameters: .init())),
        ("MAIL FROM:<\"john doe\"@b.example>", .mail(reversePath: .mailbox(mailbox("\"john doe\"", "b.example")), parameters: .init())),
        ("MAIL FROM:<\"a\\\"b\"@b.example>", .mail(reversePath: .mailbox(mailbox("\"a\\\"b\"", "b.example")), parameters: .init())),
        ("MAIL FROM:<first.last+tag@sub.b-c.example>", .mail(reversePath: .mailbox(mailbox("first.last+tag", "sub.b-c.example")), parameters: .init())),
        ("MAIL FROM:<a@[192.0.2.1]>", .mail(reversePath: .mailbox(mailbox("a", "[192.0.2.1]")), parameters: .init())),
        ("MAIL FROM:<a@[IPv6:2001:db8::1]>", .mail(reversePath: .mailbox(mailbox("a", "[IPv6:2001:db8::1]")), parameters: .init())),
        ("MAIL FROM:<a@[IPv6:::ffff:192.0.2.1]>", .mail(reversePath: .mailbox(mailbox("a", "[IPv6:::ffff:192.0.2.1]")), parameters: .init())),
        ("MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME", .mail(reversePath: .mailbox(mailbox("a", "b.example")), parameters: .init(size: 1000, body: .eightBitMIME))),
        ("MAIL FROM:<a@b.example> body=7bit size=0", .mail(reversePath: .mailbox(mailbox("a", "b.example")), parameters: .init(size: 0, body: .sevenBit))),
        ("MAIL FROM:<a@b.example> SIZE=99999999999999999999", .mail(reversePath: .mailbox(mailbox("a", "b.example")), parameters: .init(size: Int.max))),
        ("MAIL FROM:<a@b.example> AUTH=<>", .mail(reversePath: .mailbox(mailbox("a", "b.example")), parameters: .init(auth: "<>"))),
        ("MAIL FROM:<ü@bücher.example> SMTPUTF8", .mail(reversePath: .mailbox(mailbox("ü", "bücher.example")), parameters: .init(smtpUTF8: true))),
        ("RCPT TO:<x@y.example>", .rcpt(forwardPath: mailbox("x", "y.example"))),
        ("rcpt to:<x@y.example>", .rcpt(forwardPath: mailbox("x", "y.example"))),
        ("RCPT TO:<Postmaster>", .rcpt(forwardPath: mailbox("Postmaster", nil))),
        ("RCPT TO:<ü@y.example>", .rcpt(forwardPath: mailbox("ü", "y.example"))),
        ("DATA", .data),
        ("data ", .data),
        ("BDAT 100", .bdat(size: 100, last: false)),
        ("BDAT 0 LAST", .bdat(size: 0, last: true)),
        ("bdat 5 last", .bdat(size: 5, last: true)),
        ("RSET", .rset),
        ("NOOP", .noop(nil)),
        ("NOOP hello", .noop("hello")),
        ("QUIT", .quit),
        ("HELP", .help(nil)),
        ("HELP MAIL", .help("MAIL")),
        ("VRFY bob", .vrfy("bob")),
        ("EXPN staff", .expn("staff")),
        ("STARTTLS", .startTLS),
        ("starttls", .startTLS),
        ("AUTH PLAIN", .auth(mechanism: "PLAIN", initialResponse: nil)),
        ("auth plain AGFsaWNlAHNlY3JldA==", .auth(mechanism: "PLAIN", initialResponse: "AGFsaWNlAHNlY3JldA==")),
        ("AUTH LOGIN =", .auth(mechanism: "LOGIN", initialResponse: "=")),
    ]

    @Test(arguments: valid)
    func parsesValidCommand(line: String, expected: SMTPCommand) throws {
        #expect(try SMTPCommandParser.parseCommand(ByteBuffer(string: line)) == expected)
    }

    /// Paths as a session parses them; the queue keeps their `description`, and delivery
    /// takes it back with `init(validated:)` instead of parsing it again.
    @Test(arguments: valid.map(\.0) + ["MAIL FROM:<\"a@b\"@c.example>", "RCPT TO:<\"@\"@[IPv6:2001:db8::1]>"])
    func aParsedPathComesBackWholeFromItsDescription(line: String) throws {
        switch try SMTPCommandParser.parseCommand(ByteBuffer(string: line)) {
        case .mail(let reversePath, _):
            #expect(SMTPReversePath(validated: reversePath.description) == reversePath)
        case .rcpt(let forwardPath):
            #expect(SMTPMailbox(validated: forwardPath.description) == forwardPath)
            #expect(SMTPReversePath(validated: forwardPath.description) == .mailbox(forwardPath))
        default:
            break
        }
    }

    static let invalid: [(String, SMTPSyntaxError.Code)] = [
        ("", .unrecognizedCommand),
        ("FOO bar", .unrecognizedCommand),
        ("MAIL1 FROM:<a@b.c>", .unrecognizedCommand),
        ("EHLO", .invalidArguments),
        ("EHLO   ", .invalidArguments),
        ("MAIL FROM:a@b.example", .invalidArguments),
        ("MAIL TO:<a@b.example>", .invalidArguments),
        ("MAIL FROM:<a@b.example", .invalidAddress),
        ("MAIL FROM:<a>", .invalidAddress),
        ("MAIL FROM:<a@-b.example>", .invalidAddress),
        ("MAIL FROM:<a@b-.example>", .invalidAddress),
        ("MAIL FROM:<a@b..example>", .invalidAddress),
        ("MAIL FROM:<a..b@c.example>", .invalidAddress),
        ("MAIL FROM:<.a@c.example>", .invalidAddress),
        ("MAIL FROM:<a b@c.example>", .invalidAddress),
        ("MAIL FROM:<\"unterminated@c.example>", .invalidAddress),
        ("MAIL FROM:<a@[300.1.1.1]>", .invalidAddress),
        ("MAIL FROM:<a@[1.2.3]>", .invalidAddress),
        ("MAIL FROM:<a@[IPv6:1:2:3]>", .invalidAddress),
        ("MAIL FROM:<a@[IPv6:1::2::3]>", .invalidAddress),
        ("MAIL FROM:<@r1.example:>", .invalidAddress),
        ("MAIL FROM:<@r1.example a@b.example>", .invalidAddress),
        ("MAIL FROM:<a@b.example> FOO=1", .unsupportedParameter),
        ("MAIL FROM:<a@b.example> BODY=BINARYMIME", .unsupportedParameter),
        ("MAIL FROM:<a@b.example> SIZE=abc", .invalidArguments),
        ("MAIL FROM:<a@b.example> SIZE", .invalidArguments),
        ("MAIL FROM:<a@b.example> SIZE=1 SIZE=2", .invalidArguments),
        ("MAIL FROM:<a@b.example> SMTPUTF8=yes", .invalidArguments),
        ("MAIL FROM:<a@b.example>SIZE=1", .invalidArguments),
        ("MAIL FROM:<ü@b.example>", .nonASCIIAddress),
        ("MAIL FROM:<a@bücher.example>", .nonASCIIAddress),
        ("RCPT TO:<>", .invalidAddress),
        ("RCPT TO:x@y.example", .invalidArguments),
        ("RCPT TO:<x@y.example> NOTIFY=NEVER", .unsupportedParameter),
        ("DATA now", .invalidArguments),
        ("RSET x", .invalidArguments),
        ("QUIT now", .invalidArguments),
        ("STARTTLS x", .invalidArguments),
        ("BDAT", .invalidArguments),
        ("BDAT x", .invalidArguments),
        ("BDAT 10 FIRST", .invalidArguments),
        ("BDAT -1", .invalidArguments),
        ("BDAT 99999999999999999999", .invalidArguments),
        ("VRFY", .invalidArguments),
        ("EXPN", .invalidArguments),
        ("AUTH", .invalidArguments),
        ("AUTH PLAIN not-base64!", .invalidArguments),
        ("AUTH THIS-MECHANISM-NAME-IS-TOO-LONG", .invalidArguments),
    ]

    @Test(arguments: invalid)
    func rejectsInvalidCommand(line: String, expected: SMTPSyntaxError.Code) {
        #expect(throws: SMTPSyntaxError.self) { try SMTPCommandParser.parseCommand(ByteBuffer(string: line)) }
        do {
            _ = try SMTPCommandParser.parseCommand(ByteBuffer(string: line))
        } catch {
            #expect(error.code == expected, "\(error)")
        }
    }

    @Test
    func invalidUTF8IsRejected() {
        var line = ByteBuffer(string: "MAIL FROM:<")
        line.writeBytes([0xC3, 0x28])
        line.writeString("@b.example> SMTPUTF8")
        #expect(throws: SMTPSyntaxError.self) { try SMTPCommandParser.parseCommand(line) }
    }

    static let base64: [(String, [UInt8]?)] = [
        ("", []),
        ("YQ==", Array("a".utf8)),
        ("YWI=", Array("ab".utf8)),
        ("YWJj", Array("abc".utf8)),
        ("AGFsaWNlAHNlY3JldA==", Array("\0alice\0secret".utf8)),
        ("YQ", nil),
        ("Y===", nil),
        ("YQ==YWJj", nil),
        ("YW=j", nil),
        ("!!!!", nil),
    ]

    @Test(arguments: base64)
    func decodesBase64(input: String, expected: [UInt8]?) {
        #expect(Base64.decode(Array(input.utf8)) == expected)
    }
}
