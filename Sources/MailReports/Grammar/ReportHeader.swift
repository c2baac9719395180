import MailMessage

/// A message header indexed by lowercase field name, built once per message: the readers look
/// up a dozen fields, and `MessageHeader` lookups compare every name case-insensitively.
///
/// - SeeAlso: RFC 5322 §1.2.2 (field names are case-insensitive)
struct ReportHeader: Sendable {
    private var fields: [String: [HeaderField]] = [:]

    init(_ header: MessageHeader) {
        for field in header.fields {
            fields[field.name.asciiLowercased(), default: []].append(field)
        }
    }

    /// The unfolded value of the first field named `lowercaseName`.
    func value(_ lowercaseName: String) -> String? {
        fields[lowercaseName]?.first?.value
    }

    /// Every value of fields named `lowercaseName`, in order.
    func values(_ lowercaseName: String) -> [String] {
        fields[lowercaseName]?.map(\.value) ?? []
    }

    /// The first value with RFC 2047 encoded-words decoded.
    func decodedValue(_ lowercaseName: String) -> String? {
        fields[lowercaseName]?.first?.decodedValue
    }

    func contains(_ lowercaseName: String) -> Bool {
        fields[lowercaseName] != nil
    }
}

/// What the header says about who sent a message, read once for every reader.
struct MessageTraits: Sendable {
    /// From a mail system (see ``PlainBounceReader/isFromMailSystem(_:root:)``).
    var fromMailSystem: Bool
    /// A subject that bounces and delay warnings use.
    var bounceSubject: Bool
    /// Sent with a null return path (RFC 5321 §4.5.5).
    var nullReturnPath: Bool
    /// The decoded `Subject`, ASCII-lowercased.
    var lowercasedSubject: [UInt8]

    /// Whether a message looks like a mail system's report about delivery.
    var looksLikeBounce: Bool { fromMailSystem || bounceSubject || nullReturnPath }

    init(_ header: ReportHeader, root: MIMEPart) {
        let subject = Bytes.lowercased((header.decodedValue("subject") ?? "").utf8)
        lowercasedSubject = subject
        fromMailSystem = PlainBounceReader.isFromMailSystem(header, root: root)
        bounceSubject = PlainBounceReader.subjectPhrases.contains { Bytes.contains($0, in: subject) }
        nullReturnPath = header.value("return-path").map { ReportValue.removingComments($0).trimmedMailWhitespace() == "<>" } ?? false
    }
}
