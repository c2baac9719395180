import TernCore

/// `auth.*`: how failed SMTP AUTH and API key attempts are throttled; the defaults are
/// `AuthFailureThrottle.Limits`'s.
extension AuthFailureThrottle.Limits: SettingsSection {
    /// TernCore's named defaults.
    init() { self.init(maxFailuresPerClient: Self.defaultMaxFailuresPerClient) }

    static var settings: [Setting<Self>] {
        [
            .int("auth.max_failures_per_ip", \.maxFailuresPerClient, minimum: 1),
            .int("auth.max_failures_per_user", \.maxFailuresPerUser, minimum: 1),
            .seconds("auth.failure_window", \.window),
        ]
    }
}
