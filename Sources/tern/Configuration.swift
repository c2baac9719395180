import Foundation
import SMTPCore
import TernCore
import TernEngine

/// Everything `tern` reads from `tern.yaml` and `TERN_…` environment variables, read once at
/// start-up into plain values. Each component's settings type holds its defaults and lists the
/// keys it reads; this type only puts them together. No file is needed.
///
/// A new key is a field (with its default) on its component's settings type and one line in
/// that type's `settings`; its `TERN_…` variable follows. README's listing must show it too
/// (`ConfigurationTests` compares the two).
struct TernConfiguration: Sendable, Equatable, SettingsSection {
    var dataDir = "./tern-data"
    var hostname = "localhost"
    var logLevel = "info"
    var submission = SubmissionSettings()
    var mx = MXSettings()
    var limits = SMTPServerLimits()
    var http = HTTPSettings()
    /// Throttling of failed SMTP AUTH and API key attempts.
    var auth = AuthFailureThrottle.Limits()
    var tls = TLSSettings()
    var delivery = DeliverySettings()
    var tracking = TrackingSettings()
    /// Sending domain (lower-case) → its settings.
    var domains: [String: DomainSettings] = [:]
    /// Tenant name → the limits the file sets for it.
    var tenants: [String: TenantSettings] = [:]
    var bounces = BounceSettings()
    var complaints = ComplaintSettings()
    var inbound = InboundSettings()
    var sending = SendingSettings()
    var store = StoreSettings()
    var nodes = NodeSettings()

    /// Every key, each from the component that reads it.
    static var settings: [Setting<Self>] {
        [
            .string("data_dir", \.dataDir),
            .string("hostname", \.hostname),
            .string("log_level", \.logLevel),
            .table("domains", \.domains),
            .table("tenants", \.tenants),
        ]
            + SubmissionSettings.settings.map { $0.within(\.submission) }
            + MXSettings.settings.map { $0.within(\.mx) }
            + SMTPServerLimits.settings.map { $0.within(\.limits) }
            + HTTPSettings.settings.map { $0.within(\.http) }
            + AuthFailureThrottle.Limits.settings.map { $0.within(\.auth) }
            + TLSSettings.settings.map { $0.within(\.tls) }
            + DeliverySettings.settings.map { $0.within(\.delivery) }
            + TrackingSettings.settings.map { $0.within(\.tracking) }
            + BounceSettings.settings.map { $0.within(\.bounces) }
            + ComplaintSettings.settings.map { $0.within(\.complaints) }
            + InboundSettings.settings.map { $0.within(\.inbound) }
            + SendingSettings.settings.map { $0.within(\.sending) }
            + StoreSettings.settings.map { $0.within(\.store) }
            + NodeSettings.settings.map { $0.within(\.nodes) }
    }

    var databasePath: String { (dataDir as NSString).appendingPathComponent("tern.sqlite") }
}

/// A configuration problem, reported with the key and the source it came from.
struct ConfigurationError: Error, CustomStringConvertible {
    var description: String
}

extension TernConfiguration {
    /// Every key the file may set, derived from the components' settings.
    static var keys: [String] { settings.map(\.key) }

    /// `TERN_` followed by the key upper-cased with `.` as `_`, e.g. `TERN_SMTP_SUBMISSION_LISTEN`.
    static func environmentName(of key: String) -> String {
        "TERN_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    /// Reads the file (if any), then the environment on top of it.
    static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> TernConfiguration {
        guard let path else { return try load(yaml: nil, origin: "", environment: environment) }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigurationError(description: "cannot read configuration file \(path)")
        }
        return try load(yaml: text, origin: path, environment: environment)
    }

    /// Reads `yaml` (if any), then the environment on top of it; `origin` names the text in errors.
    static func load(yaml: String?, origin: String, environment: [String: String]) throws -> TernConfiguration {
        let settings = Self.settings
        var source = ConfigurationSource()
        if let yaml {
            try source.addYAML(yaml, origin: origin, known: Dictionary(settings.map { ($0.key, $0.shape) }) { first, _ in first })
        }
        for setting in settings {
            let name = environmentName(of: setting.key)
            if let value = environment[name] { source.values[setting.key] = .init(value: .scalar(value), origin: name) }
        }
        let configuration = try TernConfiguration(source)
        try configuration.validate()
        return configuration
    }

    /// The checks that involve more than one key.
    private func validate() throws {
        try delivery.validate()
        try tls.validate()
    }
}

/// `host:port`, `[v6]:port`, or `:port` (all interfaces) for listeners.
struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    var host: String
    var port: Int

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    init(_ text: String, key: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var host: Substring
        var portText: Substring
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]") else {
                throw ConfigurationError(description: "'\(key)': cannot read address '\(text)'")
            }
            host = trimmed[trimmed.index(after: trimmed.startIndex)..<close]
            portText = trimmed[trimmed.index(after: close)...].dropFirst()
        } else {
            guard let colon = trimmed.lastIndex(of: ":") else {
                throw ConfigurationError(description: "'\(key)': '\(text)' needs a port (host:port)")
            }
            host = trimmed[..<colon]
            portText = trimmed[trimmed.index(after: colon)...]
        }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw ConfigurationError(description: "'\(key)': '\(text)' has no valid port")
        }
        self.host = host.isEmpty ? "0.0.0.0" : String(host)
        self.port = port
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
