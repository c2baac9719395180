/// A message's id: random, positive, 63 bits, assigned at intake before the commit,
/// so that headers, tracking tokens and VERP addresses can name it without a store round-trip.
public struct MessageID: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }

    public static func random() -> MessageID {
        var generator = SystemRandomNumberGenerator()
        return MessageID(rawValue: Int64.random(in: 1...Int64.max, using: &generator))
    }

    /// Sixteen lowercase hex digits, the form shown in replies, logs and the API.
    public var description: String { hex16(rawValue) }

    public init?(_ text: String) {
        guard let value = parseHex16(text) else { return nil }
        self.rawValue = value
    }

    public static func < (lhs: MessageID, rhs: MessageID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One recipient of one message. Events, tracking tokens and VERP addresses name it.
public struct RecipientID: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }

    public static func random() -> RecipientID {
        var generator = SystemRandomNumberGenerator()
        return RecipientID(rawValue: Int64.random(in: 1...Int64.max, using: &generator))
    }

    public var description: String { hex16(rawValue) }

    public init?(_ text: String) {
        guard let value = parseHex16(text) else { return nil }
        self.rawValue = value
    }

    public static func < (lhs: RecipientID, rhs: RecipientID) -> Bool { lhs.rawValue < rhs.rawValue }
}

private func hex16(_ value: Int64) -> String {
    let digits = String(UInt64(bitPattern: value), radix: 16)
    return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
}

private func parseHex16(_ text: String) -> Int64? {
    guard text.utf8.count == 16, let value = UInt64(text, radix: 16), value > 0, value <= UInt64(Int64.max) else {
        return nil
    }
    return Int64(value)
}
