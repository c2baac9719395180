import Foundation

/// Which engagement a message is tracked for: opens (a pixel), clicks (rewritten links),
/// unsubscribes (`List-Unsubscribe` and the body placeholder).
///
/// Written as a comma-separated list (`opens,clicks,unsubscribe`), `all` or `none`: in the
/// configuration and in the `X-Tern-Track` header of a message.
public struct TrackingFeatures: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let opens = TrackingFeatures(rawValue: 1)
    public static let clicks = TrackingFeatures(rawValue: 2)
    public static let unsubscribe = TrackingFeatures(rawValue: 4)
    public static let all: TrackingFeatures = [.opens, .clicks, .unsubscribe]

    private static let names: [(String, TrackingFeatures)] = [("opens", .opens), ("clicks", .clicks), ("unsubscribe", .unsubscribe)]

    /// Parses the list form; nil for an unknown word.
    public init?(list text: some StringProtocol) {
        var features: TrackingFeatures = []
        for word in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !word.isEmpty {
            switch word {
            case "none": continue
            case "all": features.formUnion(.all)
            case "open": features.insert(.opens)
            case "click": features.insert(.clicks)
            case "unsubscribes": features.insert(.unsubscribe)
            default:
                guard let feature = Self.names.first(where: { $0.0 == word })?.1 else { return nil }
                features.insert(feature)
            }
        }
        self = features
    }

    public var description: String {
        let words = Self.names.filter { contains($0.1) }.map(\.0)
        return words.isEmpty ? "none" : words.joined(separator: ",")
    }
}
