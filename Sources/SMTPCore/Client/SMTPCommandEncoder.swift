public import NIOCore

extension ByteBuffer {
    /// Writes `command` as one line ending in CRLF, as a client sends it.
    ///
    /// Text arguments are written as given except CR and LF, which become spaces so that no
    /// argument can inject a second command.
    /// - SeeAlso: RFC 5321 §4.1.1, §4.1.2; RFC 1870 §6 (SIZE=), RFC 6152 §2 (BODY=), RFC 6531 §3.4 (SMTPUTF8)
    @discardableResult
    public mutating func writeSMTPCommand(_ command: SMTPCommand) -> Int {
        let start = writerIndex
        switch command {
        case .helo(let domain):
            writeStaticString("HELO ")
            writeCommandText(domain)
        case .ehlo(let domain):
            writeStaticString("EHLO ")
            writeCommandText(domain)
        case .mail(let reversePath, let parameters):
            writeStaticString("MAIL FROM:<")
            writeCommandText(reversePath.description)
            writeStaticString(">")
            if let size = parameters.size {
                writeStaticString(" SIZE=")
                writeString(String(size))
            }
            switch parameters.body {
            case .eightBitMIME: writeStaticString(" BODY=8BITMIME")
            case .sevenBit: writeStaticString(" BODY=7BIT")
            case nil: break
            }
            if parameters.smtpUTF8 { writeStaticString(" SMTPUTF8") }
            if let auth = parameters.auth {
                writeStaticString(" AUTH=")
                writeCommandText(auth)
            }
        case .rcpt(let forwardPath):
            writeStaticString("RCPT TO:<")
            writeCommandText(forwardPath.description)
            writeStaticString(">")
        case .data:
            writeStaticString("DATA")
        case .bdat(let size, let last):
            writeStaticString("BDAT ")
            writeString(String(size))
            if last { writeStaticString(" LAST") }
        case .rset:
            writeStaticString("RSET")
        case .noop(let text):
            writeStaticString("NOOP")
            if let text {
                writeStaticString(" ")
                writeCommandText(text)
            }
        case .quit:
            writeStaticString("QUIT")
        case .help(let text):
            writeStaticString("HELP")
            if let text {
                writeStaticString(" ")
                writeCommandText(text)
            }
        case .vrfy(let text):
            writeStaticString("VRFY ")
            writeCommandText(text)
        case .expn(let text):
            writeStaticString("EXPN ")
            writeCommandText(text)
        case .startTLS:
            writeStaticString("STARTTLS")
        case .auth(let mechanism, let initialResponse):
            writeStaticString("AUTH ")
            writeCommandText(mechanism)
            if let initialResponse {
                writeStaticString(" ")
                writeCommandText(initialResponse)
            }
        }
        writeStaticString("\r\n")
        return writerIndex - start
    }

    private mutating func writeCommandText(_ text: String) {
        for byte in text.utf8 {
            writeInteger(byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") ? UInt8(ascii: " ") : byte)
        }
    }
}
