/// A message to build, as an API client describes it: addresses, subject, bodies, custom
/// headers and attachments. Nothing here is checked; ``MessageBuilder`` validates it all at once
/// and reports every offending field.
public struct OutgoingMessage: Sendable, Hashable {
    public var from: Mailbox
    public var to: [Mailbox]
    public var cc: [Mailbox]
    /// Envelope recipients only: never written to the header (RFC 5322 §3.6.3 allows either).
    public var bcc: [Mailbox]
    public var replyTo: [Mailbox]
    public var subject: String
    /// The text/plain body. Empty counts as absent; at least one of ``text`` and ``html`` is needed.
    public var text: String?
    /// The text/html body. Empty counts as absent.
    public var html: String?
    /// Custom header fields by name. Fields Tern writes itself are refused (see
    /// ``MessageBuilder/reservedHeaderNames``); they are written sorted by name.
    public var headers: [String: String]
    public var attachments: [OutgoingAttachment]

    public init(
        from: Mailbox,
        to: [Mailbox] = [],
        cc: [Mailbox] = [],
        bcc: [Mailbox] = [],
        replyTo: [Mailbox] = [],
        subject: String,
        text: String? = nil,
        html: String? = nil,
        headers: [String: String] = [:],
        attachments: [OutgoingAttachment] = []
    ) {
        self.from = from
        self.to = to
        self.cc = cc
        self.bcc = bcc
        self.replyTo = replyTo
        self.subject = subject
        self.text = text
        self.html = html
        self.headers = headers
        self.attachments = attachments
    }
}

/// One mailbox: an optional display name and an addr-spec (`Shop Ünited <shop@shop.example>`).
///
/// The address must be ASCII: SMTPUTF8 local parts (RFC 6531) and U-label domains (IDNA,
/// RFC 5890) are refused by the builder; a domain may be given in its A-label (`xn--`) form.
///
/// - SeeAlso: RFC 5322 §3.4 (name-addr, addr-spec)
public struct Mailbox: Sendable, Hashable, CustomStringConvertible {
    /// The display name as it should read (any Unicode); nil or empty for none.
    public var name: String?
    /// The addr-spec, `local@domain`.
    public var address: String

    public init(_ address: String, name: String? = nil) {
        self.address = address
        self.name = name
    }

    /// Splits the text form an API client writes: `a@b.example`, `Name <a@b.example>` or
    /// `"Name, Inc." <a@b.example>` (a quoted name is unquoted). Never fails: whatever is not of
    /// that shape becomes the address, for the builder to refuse with the field's name.
    public init(parsing text: String) {
        let trimmed = text.trimmingMailWhitespace()
        guard trimmed.hasSuffix(">"), let open = trimmed.lastIndex(of: "<") else {
            self.init(trimmed)
            return
        }
        let address = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
        var name = String(trimmed[..<open]).trimmingMailWhitespace()
        if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") {
            var unquoted = ""
            var escaped = false
            for c in name.dropFirst().dropLast() {
                if c == "\\" && !escaped {
                    escaped = true
                    continue
                }
                escaped = false
                unquoted.append(c)
            }
            name = unquoted
        }
        self.init(address.trimmingMailWhitespace(), name: name.isEmpty ? nil : name)
    }

    /// `Name <address>` or `address`, unencoded, for logs and messages.
    public var description: String {
        guard let name, !name.isEmpty else { return address }
        return "\(name) <\(address)>"
    }
}

/// A file attached to an outgoing message.
///
/// With a ``contentID`` and an HTML body it is an inline part of a `multipart/related` that the
/// HTML refers to as `cid:<contentID>` (RFC 2387, RFC 2392); otherwise an attachment.
public struct OutgoingAttachment: Sendable, Hashable {
    /// The file name shown to the recipient; any Unicode (RFC 2231 encodes it).
    public var filename: String
    /// `type/subtype`, optionally with parameters; empty means `application/octet-stream`.
    public var contentType: String
    public var content: [UInt8]
    /// The id the HTML refers to as `cid:…`, without angle brackets (`logo@shop.example`).
    public var contentID: String?

    public init(filename: String, contentType: String, content: [UInt8], contentID: String? = nil) {
        self.filename = filename
        self.contentType = contentType
        self.content = content
        self.contentID = contentID
    }
}
