import NIOCore
import Testing

@testable import SMTPCore

struct SMTPReplyTests {
    static let cases: [(SMTPReply, String)] = [
        (SMTPReply(code: 250, EnhancedStatusCode(class: 2, subject: 0, detail: 0), "Ok"), "250 2.0.0 Ok\r\n"),
        (SMTPReply(code: 220, nil, "mx.example ESMTP Tern"), "220 mx.example ESMTP Tern\r\n"),
        (SMTPReply(code: 250, nil, lines: ["mx.example", "PIPELINING", "SIZE 10"]), "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10\r\n"),
        (
            SMTPReply(code: 550, EnhancedStatusCode(class: 5, subject: 7, detail: 1), lines: ["first", "second"]),
            "550-5.7.1 first\r\n550 5.7.1 second\r\n"
        ),
        (SMTPReply(code: 334, nil, ""), "334 \r\n"),
        (SMTPReply(code: 250, nil, lines: []), "250 \r\n"),
        (SMTPReply(code: 451, EnhancedStatusCode(class: 4, subject: 3, detail: 0), ""), "451 4.3.0\r\n"),
        (SMTPReply(code: 550, nil, "injected\r\n250 ok"), "550 injected  250 ok\r\n"),
    ]

    @Test(arguments: cases)
    func encodes(reply: SMTPReply, expected: String) {
        var buffer = ByteBuffer()
        let written = buffer.writeSMTPReply(reply)
        #expect(String(buffer: buffer) == expected)
        #expect(written == expected.utf8.count)
    }

    static let syntaxErrors: [(SMTPSyntaxError.Code, Int, String)] = [
        (.unrecognizedCommand, 500, "5.5.2"),
        (.invalidArguments, 501, "5.5.4"),
        (.unsupportedParameter, 555, "5.5.4"),
        (.nonASCIIAddress, 553, "5.6.7"),
        (.invalidAddress, 501, "5.1.3"),
    ]

    @Test(arguments: syntaxErrors)
    func mapsSyntaxErrors(code: SMTPSyntaxError.Code, replyCode: Int, enhanced: String) {
        let reply = SMTPReply(SMTPSyntaxError(code, "hint"))
        #expect(reply.code == replyCode)
        #expect(reply.enhancedStatusCode?.description == enhanced)
        #expect(reply.lines == ["hint"])
    }
}
