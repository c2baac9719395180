extension MailMessage {
    /// A text part's body as a string: the transfer encoding undone, then its `charset`
    /// decoded (US-ASCII when absent). Nil when Tern knows the transfer encoding or the
    /// charset not (see ``EncodedWord/decode(_:)`` for the charsets); invalid sequences
    /// decode to U+FFFD. 8-bit bytes in a part labelled US-ASCII (or not labelled) are read
    /// as unlabelled text: UTF-8 when valid, else Windows-1252.
    ///
    /// - SeeAlso: RFC 2045 §6 (transfer encodings), RFC 2046 §4.1.2 (charset)
    public func decodedText(of part: MIMEPart) -> String? {
        guard let body = decodedBody(of: part) else { return nil }
        let charset = MIMECharset(name: part.contentType.charset ?? "us-ascii")
        if charset == .usASCII { return MIMECharset.decodeUnlabelled(body) }
        return charset.decode(body)
    }
}
