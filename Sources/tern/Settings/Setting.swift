import Foundation
import TernEngine

/// A component's settings: a plain value whose `init()` holds the defaults, and the keys
/// it reads from `tern.yaml` (each key is written once, in `settings`).
protocol SettingsSection {
    init()
    /// Every key this component reads, with how its value is read.
    static var settings: [Setting<Self>] { get }
}

extension SettingsSection {
    /// Reads this component's keys from `source` on top of its defaults.
    init(_ source: ConfigurationSource) throws {
        self.init()
        for setting in Self.settings { try setting.read(&self, source) }
    }
}

/// What a key's value looks like in YAML, so that reading the file knows where keys end.
enum SettingShape: Sendable {
    /// A scalar or a list.
    case value
    /// A mapping with free-form keys (domains, credentials), not more keys.
    case mapping
    /// Free-form names, each with a mapping of these keys (`domains:`).
    case table(known: [String])
}

/// One key of `tern.yaml` (and its `TERN_…` variable): the dotted name, the shape of its
/// value, and how the value is read into `Root`.
struct Setting<Root> {
    typealias Shape = SettingShape

    let key: String
    let shape: Shape
    let read: (inout Root, ConfigurationSource) throws -> Void

    init(_ key: String, shape: Shape = .value, read: @escaping (inout Root, ConfigurationSource) throws -> Void) {
        self.key = key
        self.shape = shape
        self.read = read
    }

    /// This setting, read into the part of a larger value at `path`.
    func within<Outer>(_ path: WritableKeyPath<Outer, Root>) -> Setting<Outer> {
        let read = self.read
        return Setting<Outer>(key, shape: shape) { outer, source in try read(&outer[keyPath: path], source) }
    }
}

extension Setting {
    /// A key read by code of its own, which is given the key.
    static func custom(
        _ key: String, shape: Shape = .value, _ read: @escaping (inout Root, ConfigurationSource, String) throws -> Void
    ) -> Self {
        Self(key, shape: shape) { root, source in try read(&root, source, key) }
    }

    static func string(_ key: String, _ path: WritableKeyPath<Root, String>) -> Self {
        Self(key) { root, source in if let value = try source.string(key) { root[keyPath: path] = value } }
    }

    /// `null` (or no value) leaves it nil.
    static func optionalString(_ key: String, _ path: WritableKeyPath<Root, String?>) -> Self {
        Self(key) { root, source in if source.values[key] != nil { root[keyPath: path] = try source.string(key) } }
    }

    static func int(_ key: String, _ path: WritableKeyPath<Root, Int>, minimum: Int) -> Self {
        Self(key) { root, source in if let value = try source.int(key, minimum: minimum) { root[keyPath: path] = value } }
    }

    /// `null` (or no value) leaves it nil.
    static func optionalInt(_ key: String, _ path: WritableKeyPath<Root, Int?>, minimum: Int) -> Self {
        Self(key) { root, source in if source.values[key] != nil { root[keyPath: path] = try source.int(key, minimum: minimum) } }
    }

    /// Whole seconds.
    static func seconds(_ key: String, _ path: WritableKeyPath<Root, Duration>, minimum: Int = 1) -> Self {
        Self(key) { root, source in
            if let value = try source.int(key, minimum: minimum) { root[keyPath: path] = .seconds(value) }
        }
    }

    static func bool(_ key: String, _ path: WritableKeyPath<Root, Bool>) -> Self {
        Self(key) { root, source in if let value = try source.bool(key) { root[keyPath: path] = value } }
    }

    static func list(_ key: String, _ path: WritableKeyPath<Root, [String]>) -> Self {
        Self(key) { root, source in if let value = try source.list(key) { root[keyPath: path] = value } }
    }

    static func mapping(_ key: String, _ path: WritableKeyPath<Root, [String: String]>) -> Self {
        Self(key, shape: .mapping) { root, source in if let value = try source.map(key) { root[keyPath: path] = value } }
    }

    /// `host:port` listeners: a list, or one address.
    static func listenAddresses(_ key: String, _ path: WritableKeyPath<Root, [ListenAddress]>) -> Self {
        Self(key) { root, source in
            if let list = try source.list(key) { root[keyPath: path] = try list.map { try ListenAddress($0, key: key) } }
        }
    }

    static func listenAddress(_ key: String, _ path: WritableKeyPath<Root, ListenAddress>) -> Self {
        Self(key) { root, source in if let text = try source.string(key) { root[keyPath: path] = try ListenAddress(text, key: key) } }
    }

    /// Seconds between attempts, the last one repeating; the maximum age is a key of its own.
    static func retrySchedule(_ key: String, _ path: WritableKeyPath<Root, RetrySchedule>) -> Self {
        Self(key) { root, source in
            guard let schedule = try source.seconds(key), let last = schedule.last else { return }
            root[keyPath: path].delays = schedule.dropLast().map { .seconds($0) }
            root[keyPath: path].repeatingDelay = .seconds(last)
        }
    }

    /// Free-form names (lower-cased, they are domains), each with `Entry`'s keys.
    static func table<Entry: SettingsSection>(_ key: String, _ path: WritableKeyPath<Root, [String: Entry]>) -> Self {
        Self(key, shape: .table(known: Entry.settings.map(\.key))) { root, source in
            guard let table = try source.table(key) else { return }
            for (name, entries) in table {
                root[keyPath: path][name.lowercased()] = try Entry(entries)
            }
        }
    }
}

/// The known key nearest to an unknown one (by edit distance), when it is near enough to be a typo.
func nearestKey(to key: String, in known: some Sequence<String>) -> String? {
    let limit = max(2, key.count / 5)
    var best: (key: String, distance: Int)?
    for candidate in known {
        let distance = editDistance(key, candidate)
        if distance <= limit, distance < best?.distance ?? .max { best = (candidate, distance) }
    }
    return best?.key
}

/// Levenshtein distance: insertions, deletions and substitutions of one character.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars)
    let b = Array(b.unicodeScalars)
    if a.isEmpty { return b.count }
    var previous = Array(0...b.count)
    var current = previous
    for i in 1...a.count {
        current[0] = i
        for j in stride(from: 1, through: b.count, by: 1) {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
