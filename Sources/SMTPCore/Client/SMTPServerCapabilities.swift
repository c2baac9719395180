/// What a server advertised in its EHLO reply.
///
/// - SeeAlso: RFC 5321 §4.1.1.1 (`ehlo-ok-rsp`), RFC 2920 (PIPELINING), RFC 1870 (SIZE),
///   RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8), RFC 3207 (STARTTLS), RFC 3030 (CHUNKING),
///   RFC 2034 (ENHANCEDSTATUSCODES), RFC 4954 (AUTH)
public struct SMTPServerCapabilities: Sendable, Hashable {
    /// The domain on the first line of the EHLO reply (or the HELO reply).
    public var serverName: String
    /// Every `ehlo-keyword`, upper-cased, with its parameters as written.
    public var keywords: [String: [String]]
    /// False after a HELO fallback: no extension may be used.
    public var isExtended: Bool

    public init(serverName: String = "", keywords: [String: [String]] = [:], isExtended: Bool = true) {
        self.serverName = serverName
        self.keywords = keywords
        self.isExtended = isExtended
    }

    /// Reads an EHLO reply: the first line is the server's name, every further line one
    /// `ehlo-keyword *( SP ehlo-param )`.
    public init(ehloReply reply: SMTPReply) {
        self.init(serverName: Self.firstWord(reply.lines.first ?? ""), isExtended: true)
        for line in reply.lines.dropFirst() {
            var words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard !words.isEmpty else { continue }
            var keyword = words.removeFirst().uppercased()
            // Old servers write "AUTH=LOGIN PLAIN".
            if keyword.hasPrefix("AUTH=") {
                words.insert(String(keyword.dropFirst(5)), at: 0)
                keyword = "AUTH"
            }
            keywords[keyword, default: []].append(contentsOf: words)
        }
    }

    /// The capabilities of a server that answered HELO: none.
    public init(heloReply reply: SMTPReply) {
        self.init(serverName: Self.firstWord(reply.lines.first ?? ""), isExtended: false)
    }

    private static func firstWord(_ line: String) -> String {
        line.split(separator: " ", maxSplits: 1).first.map(String.init) ?? ""
    }

    public func supports(_ keyword: String) -> Bool { keywords[keyword.uppercased()] != nil }

    public var pipelining: Bool { supports("PIPELINING") }
    public var eightBitMIME: Bool { supports("8BITMIME") }
    public var smtpUTF8: Bool { supports("SMTPUTF8") }
    public var startTLS: Bool { supports("STARTTLS") }
    public var chunking: Bool { supports("CHUNKING") }
    public var enhancedStatusCodes: Bool { supports("ENHANCEDSTATUSCODES") }
    /// SIZE was advertised, so `SIZE=` may be sent with MAIL.
    public var size: Bool { supports("SIZE") }
    /// The fixed message size limit, nil when none was announced (no SIZE, `SIZE` or `SIZE 0`).
    /// - SeeAlso: RFC 1870 §4
    public var maxMessageSize: Int? {
        guard let parameter = keywords["SIZE"]?.first, let value = Int(parameter), value > 0 else { return nil }
        return value
    }
    /// The SASL mechanisms offered, upper-cased.
    public var authMechanisms: [String] { (keywords["AUTH"] ?? []).map { $0.uppercased() } }
}
