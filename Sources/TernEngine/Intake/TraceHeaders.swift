public import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What intake adds to a message before it is queued, as Postfix's cleanup does:
/// a `Received` trace header always (RFC 5321 §4.4), and `Message-ID` and `Date`
/// when the client left them out (RFC 5322 §3.6).
public struct TraceHeaders: Sendable {
    public var hostname: String

    public init(hostname: String) {
        self.hostname = hostname
    }

    public struct Stamped: Sendable {
        /// The message with the added headers in front.
        public var content: [UInt8]
        /// The `Message-ID` value (with angle brackets), found or added.
        public var messageID: String
        /// The unfolded value of the first `From` field, if any.
        public var from: String?
    }

    public struct Received: Sendable {
        public var heloName: String
        public var clientIP: String?
        public var protocolName: String
        public var queueID: String
        /// Named with `for` only when there is exactly one recipient (RFC 5321 §7.2).
        public var singleRecipient: String?
        public var date: Date

        public init(heloName: String, clientIP: String?, protocolName: String, queueID: String, singleRecipient: String?, date: Date) {
            self.heloName = heloName
            self.clientIP = clientIP
            self.protocolName = protocolName
            self.queueID = queueID
            self.singleRecipient = singleRecipient
            self.date = date
        }
    }

    /// The `Received` field (RFC 5321 §4.4), folded, with its CRLF.
    public func receivedField(_ received: Received) -> String {
        var field = "Received: from \(Self.sanitize(received.heloName))"
        if let ip = received.clientIP { field += " ([\(ip)])" }
        field += "\r\n\tby \(hostname) (Tern) with \(received.protocolName) id \(received.queueID)"
        if let recipient = received.singleRecipient { field += "\r\n\tfor <\(Self.sanitize(recipient))>" }
        field += ";\r\n\t\(Self.rfc5322Date(received.date))\r\n"
        return field
    }

    public func stamp(_ content: some Collection<UInt8>, received: Received) -> Stamped {
        let fields = HeaderScan(content)
        var prefix = receivedField(received)

        let messageID: String
        if let existing = fields.messageID {
            messageID = existing
        } else {
            messageID = "<\(received.queueID).\(received.date.millisecondsSinceEpochText)@\(hostname)>"
            prefix += "Message-ID: \(messageID)\r\n"
        }
        if !fields.hasDate {
            prefix += "Date: \(Self.rfc5322Date(received.date))\r\n"
        }
        var result = Array(prefix.utf8)
        // Room for the DKIM-Signature fields signing puts in front, so that they go in place.
        result.reserveCapacity(result.count + content.count + Self.signatureRoom)
        result.append(contentsOf: content)
        return Stamped(content: result, messageID: messageID, from: fields.from)
    }

    /// Keeps a client-supplied word from breaking the header: printable, no spaces or CR/LF.
    static func sanitize(_ text: String, emptyAs empty: String = "unknown") -> String {
        let cleaned = String(text.unicodeScalars.map { scalar -> Character in
            scalar.value < 0x21 || scalar.value == 0x7f ? "_" : Character(scalar)
        }.prefix(255))
        return cleaned.isEmpty ? empty : cleaned
    }

    /// Octets reserved in front of the content for DKIM signatures: an RSA-2048 field is
    /// about 600, an Ed25519 one about 350.
    static let signatureRoom = 2048

    /// `Sun, 29 Nov 2026 02:20:00 +0000` (RFC 5322 §3.3).
    public static func rfc5322Date(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(parts.tm_mday) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) +0000"
    }
}

extension Date {
    fileprivate var millisecondsSinceEpochText: String { String(Int64(timeIntervalSince1970 * 1000)) }
}

/// The few facts intake needs from the header section, found without parsing MIME:
/// whether `Date` is present, the `Message-ID` value and the `From` value.
///
/// Runs once per accepted message, so it compares field names in place instead of
/// building strings for them.
struct HeaderScan {
    var hasDate = false
    var messageID: String?
    var from: String?

    init(_ content: some Collection<UInt8>) {
        var index = content.startIndex
        // The unfolded value of the Message-ID or From field while it is being read.
        var value: [UInt8]? = nil
        var reading = NameMatcher.Match.other

        func finishField() {
            guard let collected = value else { return }
            value = nil
            let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
            guard let first = collected.firstIndex(where: { !isBlank($0) }), let last = collected.lastIndex(where: { !isBlank($0) }) else {
                return
            }
            let text = String(decoding: collected[first...last], as: UTF8.self)
            switch reading {
            case .messageID where messageID == nil: messageID = text
            case .from where from == nil: from = text
            default: break
            }
        }

        var atLineStart = true
        while index != content.endIndex {
            let byte = content[index]
            if atLineStart {
                if byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") {
                    break  // empty line: end of the header section
                }
                atLineStart = false
                if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                    continue  // folded continuation of the current field
                }
                finishField()
                // The field name, up to the colon (at most 100 octets).
                var name = NameMatcher()
                var length = 0
                while index != content.endIndex, content[index] != UInt8(ascii: ":"), content[index] != UInt8(ascii: "\r"),
                    length < 100
                {
                    name.feed(content[index])
                    length += 1
                    index = content.index(after: index)
                }
                guard index != content.endIndex, content[index] == UInt8(ascii: ":") else {
                    break  // not a header line: the header section has ended
                }
                reading = name.match
                switch reading {
                case .date: hasDate = true
                case .messageID, .from: value = []
                case .other: break
                }
                index = content.index(after: index)
                continue
            }
            if byte == UInt8(ascii: "\n") {
                atLineStart = true
            } else if byte != UInt8(ascii: "\r") {
                value?.append(byte)
            }
            index = content.index(after: index)
        }
        finishField()
    }

    /// Matches a field name against `Date`, `Message-ID` and `From`, case-insensitively and
    /// ignoring surrounding blanks, one octet at a time.
    private struct NameMatcher {
        enum Match { case date, messageID, from, other }

        private static let date = Array("date".utf8)
        private static let messageID = Array("message-id".utf8)
        private static let from = Array("from".utf8)

        private var position = 0
        private var couldBeDate = true
        private var couldBeMessageID = true
        private var couldBeFrom = true
        private var trailingBlank = false

        mutating func feed(_ byte: UInt8) {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                if position > 0 { trailingBlank = true }
                return
            }
            if trailingBlank {  // a blank inside the name: none of the fields
                couldBeDate = false
                couldBeMessageID = false
                couldBeFrom = false
                return
            }
            let lower = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            couldBeDate = couldBeDate && position < Self.date.count && Self.date[position] == lower
            couldBeMessageID = couldBeMessageID && position < Self.messageID.count && Self.messageID[position] == lower
            couldBeFrom = couldBeFrom && position < Self.from.count && Self.from[position] == lower
            position += 1
        }

        var match: Match {
            if couldBeDate && position == Self.date.count { return .date }
            if couldBeMessageID && position == Self.messageID.count { return .messageID }
            if couldBeFrom && position == Self.from.count { return .from }
            return .other
        }
    }
}
