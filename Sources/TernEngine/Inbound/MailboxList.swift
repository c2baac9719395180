import Foundation
import MailMessage

/// Reads the mailboxes of an address header (`From`, `To`, `Cc`, `Reply-To`) for display:
/// each addr-spec with its display name, RFC 2047 encoded-words decoded.
///
///     address-list = address *("," address)
///     address      = mailbox / group
///     mailbox      = name-addr / addr-spec
///     name-addr    = [display-name] angle-addr
///     group        = display-name ":" [group-list] ";" [CFWS]
///
/// Lenient as mail in the wild needs: a group's members are listed as mailboxes (its name
/// dropped), the old `addr (Name)` form gives its comment as the name, an obs-route before
/// the addr-spec is dropped, an unterminated quote, comment or angle runs to the end, and
/// encoded-words inside a quoted display name are decoded too. Never fails: an item that
/// holds no address is skipped.
///
/// - SeeAlso: RFC 5322 §3.4 (address specification), §4.4 (obsolete addressing),
///   RFC 2047 §5 (encoded-words in a phrase), §6.2 (display)
enum MailboxList {
    static func mailboxes(in value: String) -> [InboundPayload.Mailbox] {
        var reader = Reader(Array(value.unicodeScalars))
        return reader.read()
    }

    private struct Item {
        /// The display-name words: atoms and quoted-string contents.
        var words: [String] = []
        var atom = String.UnicodeScalarView()
        /// The text outside comments and angle brackets, quotes kept, whitespace dropped:
        /// the addr-spec when there is no angle-addr.
        var bare = String.UnicodeScalarView()
        var angle: String?
        var comment: String?

        mutating func endAtom() {
            guard !atom.isEmpty else { return }
            words.append(String(atom))
            atom = String.UnicodeScalarView()
        }

        func mailbox() -> InboundPayload.Mailbox? {
            var words = self.words
            if !atom.isEmpty { words.append(String(atom)) }
            if let angle {
                let address = Self.strippingRoute(angle)
                guard !address.isEmpty else { return nil }
                return InboundPayload.Mailbox(address: address, name: Self.displayName(words.joined(separator: " ")))
            }
            let address = String(bare)
            guard !address.isEmpty, address.contains("@") || words.count == 1 else { return nil }
            return InboundPayload.Mailbox(address: address, name: comment.flatMap(Self.displayName))
        }

        private static func displayName(_ text: String) -> String? {
            let name = EncodedWord.decode(text).trimmingCharacters(in: .whitespacesAndNewlines)
            return name.isEmpty ? nil : name
        }

        /// obs-angle-addr's route (`<@a,@b:user@c>`) is not part of the address.
        private static func strippingRoute(_ spec: String) -> String {
            guard spec.hasPrefix("@"), let colon = spec.firstIndex(of: ":") else { return spec }
            return String(spec[spec.index(after: colon)...])
        }
    }

    private struct Reader {
        let scalars: [Unicode.Scalar]
        var index = 0

        init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

        mutating func read() -> [InboundPayload.Mailbox] {
            var result: [InboundPayload.Mailbox] = []
            var item = Item()
            func flush() {
                if let mailbox = item.mailbox() { result.append(mailbox) }
                item = Item()
            }
            while index < scalars.count {
                let c = scalars[index]
                switch c {
                case "\"":
                    item.endAtom()
                    let (text, raw) = readQuotedString()
                    item.words.append(text)
                    item.bare.append(contentsOf: raw.unicodeScalars)
                case "(":
                    item.endAtom()
                    let text = readComment()
                    if item.comment == nil, !text.isEmpty { item.comment = text }
                case "<":
                    item.endAtom()
                    item.angle = readAngleAddr()
                case "[":
                    // A domain literal (`user@[IPv6:2001:db8::1]`): its colons are not a group's.
                    item.endAtom()
                    item.bare.append(contentsOf: readDomainLiteral().unicodeScalars)
                case ",":
                    flush()
                    index += 1
                case ":" where item.angle == nil:
                    // The end of a group's display name: the members follow.
                    item = Item()
                    index += 1
                case ";":
                    flush()
                    index += 1
                case " ", "\t", "\r", "\n":
                    item.endAtom()
                    index += 1
                default:
                    item.atom.append(c)
                    if item.angle == nil { item.bare.append(c) }
                    index += 1
                }
            }
            flush()
            return result
        }

        /// quoted-string (RFC 5322 §3.2.4): its content with quoted-pairs resolved, and as written.
        private mutating func readQuotedString() -> (text: String, raw: String) {
            let start = index
            index += 1
            var text = String.UnicodeScalarView()
            while index < scalars.count {
                let c = scalars[index]
                index += 1
                if c == "\"" { break }
                if c == "\\", index < scalars.count {
                    text.append(scalars[index])
                    index += 1
                } else if c != "\r", c != "\n" {
                    text.append(c)
                }
            }
            var raw = String.UnicodeScalarView()
            raw.append(contentsOf: scalars[start..<index])
            return (String(text), String(raw))
        }

        /// A comment (RFC 5322 §3.2.2), nested ones included: its text, whitespace collapsed.
        private mutating func readComment() -> String {
            var depth = 0
            var text = String.UnicodeScalarView()
            while index < scalars.count {
                let c = scalars[index]
                index += 1
                switch c {
                case "\\":
                    if index < scalars.count {
                        text.append(scalars[index])
                        index += 1
                    }
                case "(":
                    depth += 1
                    if depth > 1 { text.append(c) }
                case ")":
                    depth -= 1
                    if depth == 0 { return Self.collapsingWhitespace(String(text)) }
                    text.append(c)
                default:
                    text.append(c)
                }
            }
            return Self.collapsingWhitespace(String(text))
        }

        /// angle-addr: the addr-spec between `<` and `>`, comments and whitespace dropped.
        private mutating func readAngleAddr() -> String {
            index += 1
            var spec = String.UnicodeScalarView()
            while index < scalars.count {
                let c = scalars[index]
                switch c {
                case ">":
                    index += 1
                    return String(spec)
                case "\"":
                    spec.append(contentsOf: readQuotedString().raw.unicodeScalars)
                case "(":
                    _ = readComment()
                case "[":
                    spec.append(contentsOf: readDomainLiteral().unicodeScalars)
                case " ", "\t", "\r", "\n":
                    index += 1
                default:
                    spec.append(c)
                    index += 1
                }
            }
            return String(spec)
        }

        /// domain-literal (RFC 5322 §3.4.1) as written, brackets included.
        private mutating func readDomainLiteral() -> String {
            var literal = String.UnicodeScalarView()
            while index < scalars.count {
                let c = scalars[index]
                index += 1
                literal.append(c)
                if c == "]" { break }
            }
            return String(literal)
        }

        private static func collapsingWhitespace(_ text: String) -> String {
            text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }).joined(separator: " ")
        }
    }
}
