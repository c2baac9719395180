internal import NIOCore

/// A domain name as a list of labels, compared case-insensitively (RFC 1035 §2.3.3, RFC 4343).
///
/// Labels are kept as the octets' UTF-8 reading; mail domains are LDH/A-labels, so that is lossless in practice.
public struct DNSName: Sendable, Hashable, CustomStringConvertible {
    public var labels: [String]

    /// The root name, `.` — also the exchange of a null MX (RFC 7505 §3).
    public static let root = DNSName(labels: [])

    /// Longest name on the wire, length octets included (RFC 1035 §2.3.4).
    public static let maxWireLength = 255
    /// Longest label (RFC 1035 §2.3.4).
    public static let maxLabelLength = 63

    public init(labels: [String]) {
        self.labels = labels
    }

    /// Parses the presentation form: `example.com`, `example.com.` or `.` for the root.
    ///
    /// Rejects empty labels, labels over 63 octets and names over 255 octets on the wire.
    public init(_ text: String) throws(DNSWireError) {
        var text = Substring(text)
        if text == "." { self = .root; return }
        if text.hasSuffix(".") { text = text.dropLast() }
        guard !text.isEmpty else { throw DNSWireError(.badText, "empty domain name") }
        var labels: [String] = []
        var wireLength = 1
        for label in text.split(separator: ".", omittingEmptySubsequences: false) {
            let count = label.utf8.count
            guard count > 0 else { throw DNSWireError(.badText, "empty label in \"\(text)\"") }
            guard count <= Self.maxLabelLength else { throw DNSWireError(.nameTooLong, "label longer than 63 octets") }
            wireLength += 1 + count
            labels.append(String(label))
        }
        guard wireLength <= Self.maxWireLength else { throw DNSWireError(.nameTooLong, "name longer than 255 octets") }
        self.labels = labels
    }

    public var isRoot: Bool { labels.isEmpty }

    /// Presentation form without the trailing dot; the root is `.`.
    public var description: String { labels.isEmpty ? "." : labels.joined(separator: ".") }

    /// Lower-cased presentation form, for use as a key.
    public var canonical: String { description.lowercased() }

    public static func == (lhs: DNSName, rhs: DNSName) -> Bool {
        guard lhs.labels.count == rhs.labels.count else { return false }
        for (l, r) in zip(lhs.labels, rhs.labels) where l.lowercased() != r.lowercased() { return false }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        for label in labels { hasher.combine(label.lowercased()) }
    }
}

// MARK: - Wire form

extension DNSName {
    /// Compression pointers followed before a name is rejected; a legal name needs at most 127.
    static let maxPointerHops = 127

    /// Writes the name uncompressed (RFC 1035 §3.1).
    @discardableResult
    func write(to buffer: inout ByteBuffer) -> Int {
        var written = 0
        for label in labels {
            let bytes = Array(label.utf8.prefix(Self.maxLabelLength))
            written += buffer.writeInteger(UInt8(bytes.count))
            written += buffer.writeBytes(bytes)
        }
        written += buffer.writeInteger(UInt8(0))
        return written
    }

    /// Reads a possibly compressed name at `offset` of `message` (RFC 1035 §4.1.4).
    ///
    /// Pointers must point strictly before the pointer itself, so a loop cannot form; the hop count and the
    /// 255-octet limit bound the work for any input.
    /// - Returns: the name and the offset just after it where it was first encountered.
    static func read(from message: ByteBuffer, at offset: Int) throws(DNSWireError) -> (name: DNSName, end: Int) {
        var labels: [String] = []
        var position = offset
        var end: Int? = nil
        var wireLength = 1
        var hops = 0
        var lowestPointerTarget = position
        while true {
            guard let length = message.getInteger(at: position, as: UInt8.self) else {
                throw DNSWireError(.truncated, "name runs past the end of the message", offset: position)
            }
            switch length & 0xC0 {
            case 0x00:
                if length == 0 {
                    return (DNSName(labels: labels), end ?? position + 1)
                }
                let count = Int(length)
                wireLength += 1 + count
                guard wireLength <= maxWireLength else {
                    throw DNSWireError(.nameTooLong, "name longer than 255 octets", offset: position)
                }
                guard let bytes = message.getBytes(at: position + 1, length: count) else {
                    throw DNSWireError(.truncated, "label runs past the end of the message", offset: position)
                }
                labels.append(String(decoding: bytes, as: UTF8.self))
                position += 1 + count
            case 0xC0:
                guard let pointer = message.getInteger(at: position, as: UInt16.self) else {
                    throw DNSWireError(.truncated, "compression pointer cut short", offset: position)
                }
                let target = message.readerIndex + Int(pointer & 0x3FFF)
                hops += 1
                guard target < lowestPointerTarget, hops <= maxPointerHops else {
                    throw DNSWireError(.badPointer, "compression pointer does not point backwards", offset: position)
                }
                if end == nil { end = position + 2 }
                lowestPointerTarget = target
                position = target
            default:
                throw DNSWireError(.badLabelType, "reserved label type 0x\(String(length, radix: 16))", offset: position)
            }
        }
    }
}
