import Foundation
import Yams

/// Flattened configuration values (`smtp.submission.listen` → value), with where each came from.
struct ConfigurationSource {
    enum Value {
        case scalar(String)
        case list([String])
        case map([String: String])
        /// Free-form names, each with its own settings (`domains:`).
        case table([String: ConfigurationSource])
        case null
    }

    struct Entry {
        var value: Value
        var origin: String
    }

    var values: [String: Entry] = [:]

    /// Adds a YAML document's values; a key not in `known` fails, naming the nearest known key.
    mutating func addYAML(_ text: String, origin: String, known: [String: SettingShape]) throws {
        let document: Any?
        do {
            document = try Yams.load(yaml: text)
        } catch {
            throw ConfigurationError(description: "\(origin): not valid YAML: \(error)")
        }
        guard let document else { return }
        guard let root = document as? [String: Any] else {
            throw ConfigurationError(description: "\(origin): the top level must be a mapping of keys")
        }
        try add(root, prefix: "", origin: origin, known: known)
    }

    private mutating func add(_ mapping: [String: Any], prefix: String, origin: String, known: [String: SettingShape]) throws {
        for (name, value) in mapping {
            let key = prefix.isEmpty ? name : "\(prefix).\(name)"
            switch known[key] {
            case nil:
                if let nested = value as? [String: Any], !nested.isEmpty || known.keys.contains(where: { $0.hasPrefix(key + ".") }) {
                    try add(nested, prefix: key, origin: origin, known: known)
                    continue
                }
                throw Self.unknownKey(key, origin: origin, known: known.keys)
            case .some(.table(let settings)):
                values[key] = Entry(value: .table(try table(value, key: key, settings: settings, origin: origin)), origin: origin)
            case .some(.value), .some(.mapping):
                values[key] = Entry(value: Self.value(of: value), origin: origin)
            }
        }
    }

    static func unknownKey(_ key: String, origin: String, known: some Sequence<String>) -> ConfigurationError {
        let suggestion = nearestKey(to: key, in: known).map { " (did you mean \($0)?)" } ?? ""
        return ConfigurationError(description: "\(origin): unknown key \(key)\(suggestion)")
    }

    private static func value(of value: Any) -> Value {
        switch value {
        case let map as [String: Any]: .map(map.mapValues { "\($0)" })
        case let list as [Any]: .list(list.map { "\($0)" })
        case is NSNull: .null
        default: .scalar("\(value)")
        }
    }

    private func table(_ value: Any, key: String, settings: [String], origin: String) throws -> [String: ConfigurationSource] {
        if value is NSNull { return [:] }
        guard let names = value as? [String: Any] else {
            throw ConfigurationError(description: "\(origin): '\(key)' must map names to their settings")
        }
        var table: [String: ConfigurationSource] = [:]
        for (name, entry) in names {
            var source = ConfigurationSource()
            if entry is NSNull {
                table[name] = source
                continue
            }
            guard let mapping = entry as? [String: Any] else {
                throw ConfigurationError(description: "\(origin): '\(key).\(name)' must be a mapping of settings")
            }
            for (setting, value) in mapping {
                guard settings.contains(setting) else {
                    let suggestion = nearestKey(to: setting, in: settings).map { "; did you mean \($0)?" } ?? ""
                    throw ConfigurationError(
                        description: "\(origin): unknown setting '\(setting)' in '\(key).\(name)' (known: \(settings.sorted().joined(separator: ", "))\(suggestion))")
                }
                source.values[setting] = Entry(value: Self.value(of: value), origin: origin)
            }
            table[name] = source
        }
        return table
    }

    func string(_ key: String) throws -> String? {
        guard let entry = values[key] else { return nil }
        switch entry.value {
        case .scalar(let text): return text
        case .null: return nil
        case .list, .map, .table: throw ConfigurationError(description: "\(entry.origin): '\(key)' must be a single value")
        }
    }

    func table(_ key: String) throws -> [String: ConfigurationSource]? {
        guard let entry = values[key] else { return nil }
        switch entry.value {
        case .table(let table): return table
        case .null: return [:]
        case .scalar, .list, .map:
            throw ConfigurationError(description: "\(entry.origin): '\(key)' must map names to their settings")
        }
    }

    /// A list of whole seconds, each at least 1 (a retry schedule).
    func seconds(_ key: String) throws -> [Int]? {
        guard let items = try list(key) else { return nil }
        return try items.map { text in
            guard let seconds = Int(text), seconds > 0 else {
                throw ConfigurationError(description: "'\(key)' must list whole seconds, got '\(text)'")
            }
            return seconds
        }
    }

    /// A list, from a YAML sequence, a single value, or a comma-separated string.
    func list(_ key: String) throws -> [String]? {
        guard let entry = values[key] else { return nil }
        switch entry.value {
        case .list(let items): return items
        case .null: return []
        case .map, .table: throw ConfigurationError(description: "\(entry.origin): '\(key)' must be a list, not a mapping")
        case .scalar(let text):
            return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }

    /// A mapping, from YAML or from `a=b,c=d` in the environment.
    func map(_ key: String) throws -> [String: String]? {
        guard let entry = values[key] else { return nil }
        switch entry.value {
        case .map(let map): return map
        case .null: return [:]
        case .list, .table: throw ConfigurationError(description: "\(entry.origin): '\(key)' must be a mapping, not a list")
        case .scalar(let text):
            var map: [String: String] = [:]
            for pair in text.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, !parts[0].isEmpty else {
                    throw ConfigurationError(description: "\(entry.origin): '\(key)' must look like 'a=b,c=d', got '\(text)'")
                }
                map[parts[0]] = parts[1]
            }
            return map
        }
    }

    func int(_ key: String, minimum: Int) throws -> Int? {
        guard let text = try string(key), let entry = values[key] else { return nil }
        guard let value = Int(text), value >= minimum else {
            throw ConfigurationError(description: "\(entry.origin): '\(key)' must be a whole number of at least \(minimum), got '\(text)'")
        }
        return value
    }

    func bool(_ key: String) throws -> Bool? {
        guard let text = try string(key), let entry = values[key] else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw ConfigurationError(description: "\(entry.origin): '\(key)' must be true or false, got '\(text)'")
        }
    }
}
