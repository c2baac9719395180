public import NIOCore

/// Parses SMTP command lines. Pure: a line (without its CRLF) in, a command or an error out.
///
/// Verbs and parameter keywords are case-insensitive (RFC 5321 §2.4).
/// - SeeAlso: RFC 5321 §4.1
public enum SMTPCommandParser {
    /// Parses one command line, given without its terminating CRLF.
    public static func parseCommand(_ line: ByteBuffer) throws(SMTPSyntaxError) -> SMTPCommand {
        var cursor = Cursor(Array(line.readableBytesView))
        return try parseCommand(&cursor)
    }

    /// Parses one command line given as a string (tests, tools).
    public static func parseCommand(_ line: String) throws(SMTPSyntaxError) -> SMTPCommand {
        var cursor = Cursor(Array(line.utf8))
        return try parseCommand(&cursor)
    }

    // command = verb [SP arguments] CRLF
    static func parseCommand(_ cursor: inout Cursor) throws(SMTPSyntaxError) -> SMTPCommand {
        let verb = cursor.readVerb()
        let hasArguments = cursor.skipSpaces()
        if !hasArguments && !cursor.isAtEnd {
            throw SMTPSyntaxError(.unrecognizedCommand, "Command unrecognized")
        }
        switch verb {
        case "EHLO":
            return .ehlo(domain: try parseHeloArgument(&cursor, verb: verb))
        case "HELO":
            return .helo(domain: try parseHeloArgument(&cursor, verb: verb))
        case "MAIL":
            return try parseMail(&cursor)
        case "RCPT":
            return try parseRcpt(&cursor)
        case "DATA":
            try expectNoArguments(&cursor, verb: verb)
            return .data
        case "BDAT":
            return try parseBdat(&cursor)
        case "RSET":
            try expectNoArguments(&cursor, verb: verb)
            return .rset
        case "NOOP":
            return .noop(try optionalString(&cursor))
        case "QUIT":
            try expectNoArguments(&cursor, verb: verb)
            return .quit
        case "HELP":
            return .help(try optionalString(&cursor))
        case "VRFY":
            guard let argument = try optionalString(&cursor) else {
                throw SMTPSyntaxError(.invalidArguments, "Syntax: VRFY address")
            }
            return .vrfy(argument)
        case "EXPN":
            guard let argument = try optionalString(&cursor) else {
                throw SMTPSyntaxError(.invalidArguments, "Syntax: EXPN list")
            }
            return .expn(argument)
        case "STARTTLS":
            try expectNoArguments(&cursor, verb: verb)
            return .startTLS
        case "AUTH":
            return try parseAuth(&cursor)
        default:
            throw SMTPSyntaxError(.unrecognizedCommand, "Command unrecognized")
        }
    }

    static func expectNoArguments(_ cursor: inout Cursor, verb: String) throws(SMTPSyntaxError) {
        cursor.trimTrailingSpaces()
        guard cursor.isAtEnd else {
            throw SMTPSyntaxError(.invalidArguments, "Syntax: \(verb) takes no arguments")
        }
    }

    // String = Atom / Quoted-string (accepted loosely: the rest of the line)
    static func optionalString(_ cursor: inout Cursor) throws(SMTPSyntaxError) -> String? {
        cursor.trimTrailingSpaces()
        if cursor.isAtEnd { return nil }
        let bytes = cursor.readRest()
        guard bytes.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }), let string = String(validating: bytes, as: UTF8.self) else {
            throw SMTPSyntaxError(.invalidArguments, "Syntax: invalid characters in argument")
        }
        return string
    }

    // ehlo = "EHLO" SP ( Domain / address-literal ) CRLF
    // helo = "HELO" SP Domain CRLF
    // Accepted loosely, like most servers: any printable text; clients commonly send
    // names that are not valid domains, and the name is only recorded.
    static func parseHeloArgument(_ cursor: inout Cursor, verb: String) throws(SMTPSyntaxError) -> String {
        guard let argument = try? optionalString(&cursor), !argument.isEmpty else {
            throw SMTPSyntaxError(.invalidArguments, "Syntax: \(verb) hostname")
        }
        return argument
    }

    // mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF
    static func parseMail(_ cursor: inout Cursor) throws(SMTPSyntaxError) -> SMTPCommand {
        guard cursor.consumeCaseInsensitive("FROM:") else {
            throw SMTPSyntaxError(.invalidArguments, "Syntax: MAIL FROM:<address>")
        }
        _ = cursor.skipSpaces()
        let path = try parsePath(&cursor, allowNull: true)
        let parameters = try parseMailParameters(&cursor)
        if case .mailbox(let mailbox) = path, !mailbox.isASCII, !parameters.smtpUTF8 {
            throw SMTPSyntaxError(.nonASCIIAddress, "Non-ASCII address requires SMTPUTF8")
        }
        return .mail(reversePath: path, parameters: parameters)
    }

    // rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" /
    //             Forward-path ) [SP Rcpt-parameters] CRLF
    static func parseRcpt(_ cursor: inout Cursor) throws(SMTPSyntaxError) -> SMTPCommand {
        guard cursor.consumeCaseInsensitive("TO:") else {
            throw SMTPSyntaxError(.invalidArguments, "Syntax: RCPT TO:<address>")
        }
        _ = cursor.skipSpaces()
        guard case .mailbox(let mailbox) = try parsePath(&cursor, allowNull: false) else {
            throw SMTPSyntaxError(.invalidAddress, "Null recipient not allowed")
        }
        let parameters = try parseParameterList(&cursor)
        if let first = parameters.first {
            throw SMTPSyntaxError(.unsupportedParameter, "Unsupported RCPT parameter \(first.keyword)")
        }
        return .rcpt(forwardPath: mailbox)
    }

    // bdat-cmd   ::= "BDAT" SP chunk-size [ SP end-marker ] CR LF
    // chunk-size ::= 1*DIGIT
    // end-marker ::= "LAST"
    static func parseBdat(_ cursor: inout Cursor) throws(SMTPSyntaxError) -> SMTPCommand {
        let digits = cursor.read(while: isDigit)
        guard !digits.isEmpty, digits.count <= 18, let size = Int(String(decoding: digits, as: UTF8.self)) else {
            throw SMTPSyntaxError(.invalidArguments, "Syntax: BDAT size [LAST]")
        }
        var last = false
        if cursor.skipSpaces(), cursor.consumeCaseInsensitive("LAST") {
            last = true
        }
        cursor.trimTrailingSpaces()
        guard cursor.isAtEnd else {
            throw SMTPSyntaxError(.invalidArguments, "Syntax: BDAT size [LAST]")
        }
        return .bdat(size: size, last: last)
    }

    // auth-command = "AUTH" SP sasl-mech [SP initial-response] *(CRLF [base64]) [CRLF cancel-response] CRLF
    // sasl-mech    = 1*20mech-char
    // mech-char    = UPPER-ALPHA / DIGIT / HYPHEN / UNDERSCORE
    // initial-response = base64 / "="
    static func parseAuth(_ cursor: inout Cursor) throws(SMTPSyntaxError) -> SMTPCommand {
        let mechanism = cursor.read { isAlpha($0) || isDigit($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }
        guard (1...20).contains(mechanism.count) else {
            throw SMTPSyntaxError(.invalidArguments, "Syntax: AUTH mechanism [initial-response]")
        }
        var initialResponse: String?
        if cursor.skipSpaces() {
            cursor.trimTrailingSpaces()
            let response = cursor.readRest()
            guard !response.isEmpty, response.allSatisfy(isBase64OrEquals) else {
                throw SMTPSyntaxError(.invalidArguments, "Syntax: AUTH mechanism [initial-response]")
            }
            initialResponse = String(decoding: response, as: UTF8.self)
        }
        guard cursor.isAtEnd else {
            throw SMTPSyntaxError(.invalidArguments, "Syntax: AUTH mechanism [initial-response]")
        }
        return .auth(mechanism: String(decoding: mechanism, as: UTF8.self).uppercased(), initialResponse: initialResponse)
    }
}

// MARK: - Paths

extension SMTPCommandParser {
    /// Parses a path; for `allowNull` also `<>`.
    ///
    ///     Reverse-path   = Path / "<>"
    ///     Forward-path   = Path
    ///     Path           = "<" [ A-d-l ":" ] Mailbox ">"
    ///     A-d-l          = At-domain *( "," At-domain )
    ///     At-domain      = "@" Domain
    ///
    /// Source routes are accepted and dropped (RFC 5321 §4.1.1.3, Appendix C).
    public static func parsePath(_ text: String, allowNull: Bool) throws(SMTPSyntaxError) -> SMTPReversePath {
        var cursor = Cursor(Array(text.utf8))
        let path = try parsePath(&cursor, allowNull: allowNull)
        guard cursor.isAtEnd else { throw SMTPSyntaxError(.invalidAddress, "Unexpected text after path") }
        return path
    }

    static func parsePath(_ cursor: inout Cursor, allowNull: Bool) throws(SMTPSyntaxError) -> SMTPReversePath {
        guard cursor.consume(UInt8(ascii: "<")) else {
            throw SMTPSyntaxError(.invalidArguments, "Syntax: address must be in angle brackets")
        }
        if cursor.consume(UInt8(ascii: ">")) {
            guard allowNull else { throw SMTPSyntaxError(.invalidAddress, "Null path not allowed here") }
            return .null
        }
        if cursor.peek == UInt8(ascii: "@") {
            // A-d-l ":"
            repeat {
                guard cursor.consume(UInt8(ascii: "@")) else {
                    throw SMTPSyntaxError(.invalidAddress, "Bad source route")
                }
                _ = try parseDomain(&cursor)
            } while cursor.consume(UInt8(ascii: ","))
            guard cursor.consume(UInt8(ascii: ":")) else {
                throw SMTPSyntaxError(.invalidAddress, "Bad source route")
            }
        }
        let mailbox = try parseMailbox(&cursor, allowPostmaster: !allowNull)
        guard cursor.consume(UInt8(ascii: ">")) else {
            throw SMTPSyntaxError(.invalidAddress, "Bad address syntax")
        }
        return .mailbox(mailbox)
    }

    // Mailbox        = Local-part "@" ( Domain / address-literal )
    static func parseMailbox(_ cursor: inout Cursor, allowPostmaster: Bool) throws(SMTPSyntaxError) -> SMTPMailbox {
        let localPart = try parseLocalPart(&cursor)
        if allowPostmaster, cursor.peek == UInt8(ascii: ">"), localPart.lowercased() == "postmaster" {
            return SMTPMailbox(localPart: localPart, domain: nil)
        }
        guard cursor.consume(UInt8(ascii: "@")) else {
            throw SMTPSyntaxError(.invalidAddress, "Address must be local-part@domain")
        }
        let domain: String
        if cursor.peek == UInt8(ascii: "[") {
            domain = try parseAddressLiteral(&cursor)
        } else {
            domain = try parseDomain(&cursor)
        }
        return SMTPMailbox(localPart: localPart, domain: domain)
    }

    // Local-part     = Dot-string / Quoted-string
    // Dot-string     = Atom *("."  Atom)
    // Atom           = 1*atext
    // Quoted-string  = DQUOTE *QcontentSMTP DQUOTE
    // QcontentSMTP   = qtextSMTP / quoted-pairSMTP
    // quoted-pairSMTP  = %d92 %d32-126
    // qtextSMTP      = %d32-33 / %d35-91 / %d93-126
    // (RFC 6531: atext =/ UTF8-non-ascii, qtextSMTP =/ UTF8-non-ascii)
    static func parseLocalPart(_ cursor: inout Cursor) throws(SMTPSyntaxError) -> String {
        let start = cursor.index
        if cursor.consume(UInt8(ascii: "\"")) {
            while true {
                guard let byte = cursor.next() else {
                    throw SMTPSyntaxError(.invalidAddress, "Unterminated quoted local part")
                }
                if byte == UInt8(ascii: "\"") { break }
                if byte == UInt8(ascii: "\\") {
                    guard let quoted = cursor.next(), (32...126).contains(quoted) else {
                        throw SMTPSyntaxError(.invalidAddress, "Bad quoted pair in local part")
                    }
                } else if !(byte >= 0x80 || (32...126).contains(byte)) {
                    throw SMTPSyntaxError(.invalidAddress, "Bad character in quoted local part")
                }
            }
        } else {
            repeat {
                guard !cursor.read(while: isAtext).isEmpty else {
                    throw SMTPSyntaxError(.invalidAddress, "Bad local part")
                }
            } while cursor.consume(UInt8(ascii: "."))
        }
        let bytes = cursor.bytes[start..<cursor.index]
        guard bytes.count <= 64 * 4, let string = String(validating: bytes, as: UTF8.self) else {
            throw SMTPSyntaxError(.invalidAddress, "Bad local part")
        }
        return string
    }

    // Domain         = sub-domain *("." sub-domain)
    // sub-domain     = Let-dig [Ldh-str]     (RFC 6531: sub-domain =/ U-label)
    // Let-dig        = ALPHA / DIGIT
    // Ldh-str        = *( ALPHA / DIGIT / "-" ) Let-dig
    static func parseDomain(_ cursor: inout Cursor) throws(SMTPSyntaxError) -> String {
        let start = cursor.index
        repeat {
            let label = cursor.read { isLetDig($0) || $0 == UInt8(ascii: "-") }
            guard let first = label.first, let last = label.last, isLetDig(first), isLetDig(last) else {
                throw SMTPSyntaxError(.invalidAddress, "Bad domain")
            }
        } while cursor.consume(UInt8(ascii: "."))
        let bytes = cursor.bytes[start..<cursor.index]
        guard bytes.count <= 255 * 4, let string = String(validating: bytes, as: UTF8.self) else {
            throw SMTPSyntaxError(.invalidAddress, "Bad domain")
        }
        return string
    }

    // address-literal  = "[" ( IPv4-address-literal / IPv6-address-literal / General-address-literal ) "]"
    // IPv4-address-literal  = Snum 3("."  Snum)
    // IPv6-address-literal  = "IPv6:" IPv6-addr
    // General-address-literal  = Standardized-tag ":" 1*dcontent
    // dcontent       = %d33-90 / %d94-126
    static func parseAddressLiteral(_ cursor: inout Cursor) throws(SMTPSyntaxError) -> String {
        let start = cursor.index
        guard cursor.consume(UInt8(ascii: "[")) else { throw SMTPSyntaxError(.invalidAddress, "Bad address literal") }
        let content = cursor.read { (33...90).contains($0) || (94...126).contains($0) }
        guard cursor.consume(UInt8(ascii: "]")), !content.isEmpty else {
            throw SMTPSyntaxError(.invalidAddress, "Bad address literal")
        }
        let text = String(decoding: content, as: UTF8.self)
        if let colon = text.firstIndex(of: ":") {
            let tag = text[..<colon]
            let value = text[text.index(after: colon)...]
            if tag.lowercased() == "ipv6" {
                guard isIPv6(value) else { throw SMTPSyntaxError(.invalidAddress, "Bad IPv6 address literal") }
            } else {
                guard !value.isEmpty, !tag.isEmpty,
                      tag.utf8.allSatisfy({ isLetDig($0) || $0 == UInt8(ascii: "-") }),
                      tag.utf8.last.map(isLetDig) == true else {
                    throw SMTPSyntaxError(.invalidAddress, "Bad address literal")
                }
            }
        } else {
            guard isIPv4(Substring(text)) else { throw SMTPSyntaxError(.invalidAddress, "Bad IPv4 address literal") }
        }
        return String(decoding: cursor.bytes[start..<cursor.index], as: UTF8.self)
    }

    // Snum           = 1*3DIGIT  ; representing a decimal integer value in the range 0 through 255
    static func isIPv4(_ text: Substring) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            (1...3).contains(part.count) && part.utf8.allSatisfy(isDigit) && (Int(part) ?? 256) <= 255
        }
    }

    // IPv6-addr      = IPv6-full / IPv6-comp / IPv6v4-full / IPv6v4-comp
    // Checked structurally: hex groups of at most 4 digits, at most one "::", an optional IPv4 tail.
    static func isIPv6(_ text: Substring) -> Bool {
        var hexPart = text
        var maxGroups = 8
        if let lastColon = text.lastIndex(of: ":"), text[text.index(after: lastColon)...].contains(".") {
            guard isIPv4(text[text.index(after: lastColon)...]) else { return false }
            hexPart = text[...lastColon]
            maxGroups = 6
            if !hexPart.hasSuffix("::") { hexPart = hexPart.dropLast() }
        }
        func groups(_ part: Substring) -> Int? {
            if part.isEmpty { return 0 }
            let groups = part.split(separator: ":", omittingEmptySubsequences: false)
            guard groups.allSatisfy({ (1...4).contains($0.count) && $0.utf8.allSatisfy(isHexDigit) }) else { return nil }
            return groups.count
        }
        let halves = hexPart.split(separator: "::" as String, omittingEmptySubsequences: false)
        switch halves.count {
        case 1:
            return groups(halves[0]) == maxGroups
        case 2:
            guard let left = groups(halves[0]), let right = groups(halves[1]) else { return false }
            return left + right < maxGroups
        default:
            return false
        }
    }
}

// MARK: - Parameters

extension SMTPCommandParser {
    struct Parameter: Hashable {
        var keyword: String
        var value: String?
    }

    // Mail-parameters  = esmtp-param *(SP esmtp-param)
    // esmtp-param    = esmtp-keyword ["=" esmtp-value]
    // esmtp-keyword  = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
    // esmtp-value    = 1*(%d33-60 / %d62-126)     (RFC 6531: esmtp-value =/ UTF8-non-ascii)
    static func parseParameterList(_ cursor: inout Cursor) throws(SMTPSyntaxError) -> [Parameter] {
        var parameters: [Parameter] = []
        cursor.trimTrailingSpaces()
        while !cursor.isAtEnd {
            guard cursor.skipSpaces() else {
                throw SMTPSyntaxError(.invalidArguments, "Syntax: parameters must be separated by spaces")
            }
            let keyword = cursor.read { isAlpha($0) || isDigit($0) || $0 == UInt8(ascii: "-") }
            guard let first = keyword.first, isAlpha(first) || isDigit(first) else {
                throw SMTPSyntaxError(.invalidArguments, "Syntax: bad parameter")
            }
            var value: String?
            if cursor.consume(UInt8(ascii: "=")) {
                let bytes = cursor.read { (33...60).contains($0) || (62...126).contains($0) || $0 >= 0x80 }
                guard !bytes.isEmpty, let string = String(validating: bytes, as: UTF8.self) else {
                    throw SMTPSyntaxError(.invalidArguments, "Syntax: bad parameter value")
                }
                value = string
            }
            guard cursor.isAtEnd || cursor.peek == UInt8(ascii: " ") else {
                throw SMTPSyntaxError(.invalidArguments, "Syntax: bad parameter")
            }
            parameters.append(Parameter(keyword: String(decoding: keyword, as: UTF8.self).uppercased(), value: value))
        }
        return parameters
    }

    // size-param   = "SIZE=" size-value ; size-value = 1*20DIGIT     (RFC 1870)
    // body-param   = "BODY=7BIT" / "BODY=8BITMIME"                      (RFC 6152)
    // smtputf8     = "SMTPUTF8"                                         (RFC 6531)
    // auth-param   = "AUTH=" xtext                                      (RFC 4954 §5)
    static func parseMailParameters(_ cursor: inout Cursor) throws(SMTPSyntaxError) -> SMTPMailParameters {
        var result = SMTPMailParameters()
        var seen: Set<String> = []
        for parameter in try parseParameterList(&cursor) {
            guard seen.insert(parameter.keyword).inserted else {
                throw SMTPSyntaxError(.invalidArguments, "Duplicate parameter \(parameter.keyword)")
            }
            switch parameter.keyword {
            case "SIZE":
                guard let value = parameter.value, (1...20).contains(value.utf8.count), value.utf8.allSatisfy(isDigit) else {
                    throw SMTPSyntaxError(.invalidArguments, "Syntax: SIZE=octets")
                }
                result.size = Int(value) ?? Int.max
            case "BODY":
                switch parameter.value?.uppercased() {
                case "7BIT": result.body = .sevenBit
                case "8BITMIME": result.body = .eightBitMIME
                case nil: throw SMTPSyntaxError(.invalidArguments, "Syntax: BODY=7BIT|8BITMIME")
                default: throw SMTPSyntaxError(.unsupportedParameter, "Unsupported BODY type")
                }
            case "SMTPUTF8":
                guard parameter.value == nil else {
                    throw SMTPSyntaxError(.invalidArguments, "Syntax: SMTPUTF8 takes no value")
                }
                result.smtpUTF8 = true
            case "AUTH":
                guard let value = parameter.value else {
                    throw SMTPSyntaxError(.invalidArguments, "Syntax: AUTH=mailbox")
                }
                result.auth = value
            default:
                throw SMTPSyntaxError(.unsupportedParameter, "Unsupported MAIL parameter \(parameter.keyword)")
            }
        }
        return result
    }
}

// MARK: - Cursor and character classes

extension SMTPCommandParser {
    struct Cursor {
        let bytes: [UInt8]
        var index: Int
        var end: Int

        init(_ bytes: [UInt8]) {
            self.bytes = bytes
            self.index = 0
            self.end = bytes.count
        }

        var isAtEnd: Bool { index >= end }
        var peek: UInt8? { isAtEnd ? nil : bytes[index] }

        mutating func next() -> UInt8? {
            guard !isAtEnd else { return nil }
            defer { index += 1 }
            return bytes[index]
        }

        mutating func consume(_ byte: UInt8) -> Bool {
            guard peek == byte else { return false }
            index += 1
            return true
        }

        mutating func consumeCaseInsensitive(_ text: String) -> Bool {
            let expected = Array(text.utf8)
            guard end - index >= expected.count else { return false }
            for (offset, byte) in expected.enumerated() where lowercased(bytes[index + offset]) != lowercased(byte) {
                return false
            }
            index += expected.count
            return true
        }

        mutating func read(while predicate: (UInt8) -> Bool) -> ArraySlice<UInt8> {
            let start = index
            while index < end, predicate(bytes[index]) { index += 1 }
            return bytes[start..<index]
        }

        mutating func readRest() -> ArraySlice<UInt8> {
            defer { index = end }
            return bytes[index..<end]
        }

        /// Skips SP and HTAB; returns whether any were skipped.
        mutating func skipSpaces() -> Bool {
            !read(while: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }).isEmpty
        }

        mutating func trimTrailingSpaces() {
            while end > index, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t") { end -= 1 }
        }

        /// The verb: letters up to the first space, upper-cased. Non-letters make it unrecognizable.
        mutating func readVerb() -> String {
            let verb = read { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
            guard verb.count <= 16, verb.allSatisfy(isAlpha) else { return "" }
            return String(decoding: verb.map { $0 & 0xDF }, as: UTF8.self)
        }
    }
}

@inline(__always) func lowercased(_ byte: UInt8) -> UInt8 { isAlpha(byte) ? byte | 0x20 : byte }
@inline(__always) func isAlpha(_ byte: UInt8) -> Bool { (65...90).contains(byte) || (97...122).contains(byte) }
@inline(__always) func isDigit(_ byte: UInt8) -> Bool { (48...57).contains(byte) }
@inline(__always) func isHexDigit(_ byte: UInt8) -> Bool { isDigit(byte) || (65...70).contains(byte) || (97...102).contains(byte) }
/// Let-dig, extended with UTF-8 octets for U-labels (RFC 6531).
@inline(__always) func isLetDig(_ byte: UInt8) -> Bool { isAlpha(byte) || isDigit(byte) || byte >= 0x80 }
/// atext (RFC 5322 §3.2.3), extended with UTF-8 octets (RFC 6531).
@inline(__always) func isAtext(_ byte: UInt8) -> Bool {
    if isAlpha(byte) || isDigit(byte) || byte >= 0x80 { return true }
    switch byte {
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
         UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "/"),
         UInt8(ascii: "="), UInt8(ascii: "?"), UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"),
         UInt8(ascii: "{"), UInt8(ascii: "|"), UInt8(ascii: "}"), UInt8(ascii: "~"):
        return true
    default:
        return false
    }
}
@inline(__always) func isBase64OrEquals(_ byte: UInt8) -> Bool {
    isAlpha(byte) || isDigit(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=")
}
