/// What the tracking endpoint knows of one open or click, from the request alone.
public struct EngagementRequest: Sendable, Hashable {
    public var kind: EngagementKind
    /// The HTTP method: "GET", "HEAD", "POST".
    public var method: String
    public var userAgent: String?
    public var clientIP: IPAddress?
    /// Seconds from the recipient's delivery to this request; nil when unknown, negative
    /// when the request came before the delivery was recorded.
    public var secondsSinceDelivery: Double?

    public init(
        kind: EngagementKind, method: String, userAgent: String?, clientIP: IPAddress? = nil,
        secondsSinceDelivery: Double? = nil
    ) {
        self.kind = kind
        self.method = method
        self.userAgent = userAgent
        self.clientIP = clientIP
        self.secondsSinceDelivery = secondsSinceDelivery
    }
}

/// Whether an open or click was a machine's, and which rule said so.
public struct EngagementVerdict: Sendable, Hashable, CustomStringConvertible {
    public var machine: Bool
    /// The matching rule's reason, or "human".
    public var reason: String

    public init(machine: Bool, reason: String) {
        self.machine = machine
        self.reason = reason
    }

    public static let human = EngagementVerdict(machine: false, reason: "human")

    public var description: String { machine ? "machine (\(reason))" : reason }
}

/// Tells machine opens and clicks (image proxies, link scanners, prefetchers) from
/// people's, by the first of its rules that matches. Constant work per request: rules
/// are compiled once, address ranges into sorted intervals searched by bisection.
public struct EngagementClassifier: Sendable {
    /// Only this much of a User-Agent is searched; browsers send about 150 bytes.
    public static let maximumUserAgentBytes = 1024

    public let rules: EngagementRules
    private let compiled: [CompiledRule]

    public init(rules: EngagementRules = .defaults) {
        self.rules = rules
        self.compiled = rules.rules.map(CompiledRule.init)
    }

    public func classify(_ request: EngagementRequest) -> EngagementVerdict {
        var userAgent = UserAgentText(request.userAgent)
        for rule in compiled where rule.matches(request, userAgent: &userAgent) {
            return rule.machine ? EngagementVerdict(machine: true, reason: rule.reason) : .human
        }
        return .human
    }
}

/// The request's User-Agent, lowercased (ASCII) and cut to the searched length the first
/// time a rule needs it.
private struct UserAgentText {
    let original: String?
    private var folded: [UInt8]?

    init(_ original: String?) { self.original = original }

    var isEmpty: Bool {
        original?.utf8.allSatisfy { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") } ?? true
    }

    mutating func bytes() -> [UInt8] {
        if let folded { return folded }
        let bytes = (original?.utf8.prefix(EngagementClassifier.maximumUserAgentBytes)).map { $0.map(asciiLowercased) } ?? []
        folded = bytes
        return bytes
    }
}

/// Whether `text`, ASCII-lowercased, is `folded`: without building the lowercased copy.
private func equalsFolded(_ text: String.UTF8View, _ folded: [UInt8]) -> Bool {
    text.count == folded.count && zip(text, folded).allSatisfy { asciiLowercased($0) == $1 }
}

private func asciiLowercased(_ byte: UInt8) -> UInt8 {
    (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
}

/// A class, not a struct: `classify` walks the rules for every open and click, and copying a
/// struct of this many references out of the array costs a retain and a release of each.
private final class CompiledRule: Sendable {
    let reason: String
    let machine: Bool
    let kinds: [EngagementKind]?  // a list: two kinds at most, and no hashing per request
    let methods: [[UInt8]]?
    let userAgentContains: [[UInt8]]?
    let userAgentEmpty: Bool?
    let addresses: AddressSet?
    let maxSecondsSinceDelivery: Double?

    init(_ rule: EngagementRule) {
        reason = rule.reason
        machine = rule.machine
        kinds = rule.kinds
        methods = rule.methods?.map { $0.utf8.map(asciiLowercased) }
        userAgentContains = rule.userAgentContains?.map { $0.utf8.map(asciiLowercased) }.filter { !$0.isEmpty }
        userAgentEmpty = rule.userAgentEmpty
        addresses = rule.ipRanges.map(AddressSet.init)
        maxSecondsSinceDelivery = rule.maxSecondsSinceDelivery
    }

    func matches(_ request: EngagementRequest, userAgent: inout UserAgentText) -> Bool {
        if let kinds, !kinds.contains(request.kind) { return false }
        if let methods {
            guard methods.contains(where: { equalsFolded(request.method.utf8, $0) }) else { return false }
        }
        if let userAgentEmpty, userAgent.isEmpty != userAgentEmpty { return false }
        if let addresses {
            guard let address = request.clientIP, addresses.contains(address) else { return false }
        }
        if let maxSecondsSinceDelivery {
            guard let seconds = request.secondsSinceDelivery, seconds <= maxSecondsSinceDelivery else { return false }
        }
        if let userAgentContains {
            let text = userAgent.bytes()
            guard userAgentContains.contains(where: { contains(text, $0) }) else { return false }
        }
        return true
    }

    private func contains(_ text: [UInt8], _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, text.count >= needle.count else { return false }
        var start = 0
        let last = text.count - needle.count
        while start <= last {
            if text[start] == first {
                var offset = 1
                while offset < needle.count, text[start + offset] == needle[offset] { offset += 1 }
                if offset == needle.count { return true }
            }
            start += 1
        }
        return false
    }
}

/// CIDR blocks as sorted, merged intervals, one list per address family. An IPv4-mapped
/// IPv6 address is also looked up as IPv4, as `IPNetwork.contains` does.
struct AddressSet: Sendable, Hashable {
    private(set) var v4: [ClosedRange<UInt32>] = []
    private(set) var v6: [ClosedRange<UInt128>] = []

    init(_ networks: [IPNetwork]) {
        var v4 = [ClosedRange<UInt32>]()
        var v6 = [ClosedRange<UInt128>]()
        for network in networks {
            let bytes = network.address.bytes
            let length = max(0, network.prefixLength)
            if bytes.count == 4 {
                let address = bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                let host: UInt32 = length >= 32 ? 0 : UInt32.max >> UInt32(length)
                v4.append((address & ~host)...(address | host))
            } else if bytes.count == 16 {
                let address = bytes.reduce(UInt128(0)) { $0 << 8 | UInt128($1) }
                let host: UInt128 = length >= 128 ? 0 : UInt128.max >> UInt128(length)
                v6.append((address & ~host)...(address | host))
            }
        }
        self.v4 = Self.merged(v4)
        self.v6 = Self.merged(v6)
    }

    private static func merged<T: FixedWidthInteger>(_ ranges: [ClosedRange<T>]) -> [ClosedRange<T>] {
        var result = [ClosedRange<T>]()
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let previous = result.last, previous.upperBound == T.max || range.lowerBound <= previous.upperBound + 1 {
                result[result.count - 1] = previous.lowerBound...max(previous.upperBound, range.upperBound)
            } else {
                result.append(range)
            }
        }
        return result
    }

    func contains(_ address: IPAddress) -> Bool {
        let bytes = address.bytes
        if bytes.count == 4 {
            return Self.search(v4, bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        }
        guard bytes.count == 16 else { return false }
        if Self.search(v6, bytes.reduce(UInt128(0)) { $0 << 8 | UInt128($1) }) { return true }
        if let mapped = address.ipv4Mapped {
            return Self.search(v4, mapped.bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        }
        return false
    }

    /// Whether a range holds `value`: bisects for the last range starting at or before it.
    private static func search<T: FixedWidthInteger>(_ ranges: [ClosedRange<T>], _ value: T) -> Bool {
        var low = 0
        var high = ranges.count
        while low < high {
            let middle = (low + high) / 2
            if ranges[middle].lowerBound <= value { low = middle + 1 } else { high = middle }
        }
        return low > 0 && ranges[low - 1].upperBound >= value
    }
}
