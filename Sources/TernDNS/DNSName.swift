/// A domain name as a list of labels, compared case-insensitively (RFC 1035 §2.3.3, RFC 4343).
public struct DNSName: Sendable, Hashable, CustomStringConvertible {
    public var labels: [String]

    public init(labels: [String]) {
        self.labels = labels
    }

    public var description: String { labels.isEmpty ? "." : labels.joined(separator: ".") }

    public static func == (lhs: DNSName, rhs: DNSName) -> Bool {
        lhs.labels.map { $0.lowercased() } == rhs.labels.map { $0.lowercased() }
    }

    public func hash(into hasher: inout Hasher) {
        for label in labels { hasher.combine(label.lowercased()) }
    }
}
