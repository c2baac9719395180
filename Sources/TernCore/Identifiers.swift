public import Foundation
import Synchronization

/// A message's id: positive, 63 bits, assigned at intake before the commit, so that
/// headers, tracking tokens and VERP addresses can name it without a store round-trip.
/// Intake takes time-ordered ids (`next()`); `random()` is for tests and tools.
public struct MessageID: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }

    /// A new time-ordered id (see `TimeOrderedID`).
    public static func next() -> MessageID { MessageID(rawValue: TimeOrderedID.next()) }

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

    /// A new time-ordered id (see `TimeOrderedID`).
    public static func next() -> RecipientID { RecipientID(rawValue: TimeOrderedID.next()) }

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

/// A message that arrived at Tern's MX (a bounce, a complaint, inbound mail).
public struct InboundMessageID: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }

    /// A new time-ordered id (see `TimeOrderedID`).
    public static func next() -> InboundMessageID { InboundMessageID(rawValue: TimeOrderedID.next()) }

    public var description: String { hex16(rawValue) }

    public init?(_ text: String) {
        guard let value = parseHex16(text) else { return nil }
        self.rawValue = value
    }

    public static func < (lhs: InboundMessageID, rhs: InboundMessageID) -> Bool { lhs.rawValue < rhs.rawValue }
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

/// Ids that grow with time: the milliseconds since 2025-01-01 in the high 41 bits (until
/// 2094), then a 12-bit sequence, then a 10-bit node number. Stores keyed by id then append
/// new rows at the end of their B-trees instead of at random places, which keeps commits
/// cheap as the store grows.
///
/// Within one process every id is larger than the one before. Two nodes never give the same
/// id: each has its own node number (`NodeStore.nodeNumber(of:)`, set with `setNode(_:)`
/// before the first id; a process that sets none, such as a test, takes a random one). A
/// node making more than 4,096 ids in one millisecond borrows the next millisecond.
public final class TimeOrderedID: Sendable {
    /// 2025-01-01T00:00:00Z in milliseconds since 1970.
    public static let epochMilliseconds: Int64 = 1_735_689_600_000
    /// The bits below the time: sequence and node number.
    public static let sequenceBits = 22
    public static let nodeBits = 10
    /// Node numbers are 0..<1024.
    public static let nodeCount = 1 << nodeBits

    /// The process's generator: every id it gives is larger than the one before.
    public static let shared = TimeOrderedID()

    /// The last id given, and this generator's node number.
    private let state: Mutex<(last: Int64, node: Int64)>

    public init() {
        state = Mutex((last: 0, node: Int64.random(in: 0..<Int64(Self.nodeCount))))
    }

    public init(node: Int) {
        precondition((0..<Self.nodeCount).contains(node), "a node number is 0..<\(Self.nodeCount)")
        state = Mutex((last: 0, node: Int64(node)))
    }

    /// This process's node number from now on (`tern serve` sets the one the store gave it).
    public func setNode(_ node: Int) {
        precondition((0..<Self.nodeCount).contains(node), "a node number is 0..<\(Self.nodeCount)")
        state.withLock { $0.node = Int64(node) }
    }

    public var node: Int { state.withLock { Int($0.node) } }

    public static func next() -> Int64 {
        shared.next(nowMilliseconds: Int64(Date().timeIntervalSince1970 * 1000))
    }

    public func next(nowMilliseconds: Int64) -> Int64 {
        let elapsed = max(0, nowMilliseconds - Self.epochMilliseconds)
        return state.withLock { state in
            // The next sequence number after the last id, with this node's number below it.
            let following = ((state.last >> Self.nodeBits) + 1) << Self.nodeBits | state.node
            state.last = max(following, elapsed << Self.sequenceBits | state.node)
            return state.last
        }
    }

    /// When an id was made (to the millisecond).
    public static func date(of id: Int64) -> Date {
        Date(timeIntervalSince1970: Double((id >> sequenceBits) + epochMilliseconds) / 1000)
    }

    /// The node number that made an id.
    public static func node(of id: Int64) -> Int {
        Int(id & Int64(nodeCount - 1))
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a small, fast generator with a 64-bit seed. Not for
/// secrets; for spreading values (id starting points) and for replayable tests.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
