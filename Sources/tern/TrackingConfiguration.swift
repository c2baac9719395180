import Foundation
import TernCore
import TernEngine

extension TernConfiguration {
    /// The signing keys of tracking tokens: the data folder's secret signs; earlier secrets
    /// listed in `tracking.previous_secrets` still verify.
    func trackingKeys(currentSecret: [UInt8]) throws -> TrackingKeys {
        let previous = try tracking.previousSecrets.enumerated().map { index, text in
            guard let data = Data(base64Encoded: text.trimmingCharacters(in: .whitespaces)) else {
                throw ConfigurationError(description: "'tracking.previous_secrets' entry \(index + 1) is not base64")
            }
            return [UInt8](data)
        }
        do {
            return try TrackingKeys(secrets: [currentSecret] + previous)
        } catch {
            throw ConfigurationError(description: "tracking secrets: \(error)")
        }
    }

    /// The built-in engagement rules, or those of `tracking.rules_file`.
    func engagementRules() throws -> EngagementRules {
        guard let path = tracking.rulesFile else { return .defaults }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(description: "cannot read tracking.rules_file \(path)")
        }
        do {
            return try EngagementRules.load(fromJSON: data)
        } catch {
            throw ConfigurationError(description: "tracking.rules_file \(path): \(error)")
        }
    }

    /// What is tracked for each credential.
    func trackingDefaults() throws -> (all: TrackingFeatures, perCredential: [String: TrackingFeatures]) {
        guard let all = TrackingFeatures(list: tracking.track) else {
            throw ConfigurationError(description: "'tracking.track' must list opens, clicks, unsubscribe (or be all or none), got '\(tracking.track)'")
        }
        var perCredential: [String: TrackingFeatures] = [:]
        for (name, list) in tracking.credentials {
            guard let features = TrackingFeatures(list: list) else {
                throw ConfigurationError(description: "'tracking.credentials.\(name)' must list opens, clicks, unsubscribe (or be all or none), got '\(list)'")
            }
            perCredential[name] = features
        }
        return (all, perCredential)
    }
}
