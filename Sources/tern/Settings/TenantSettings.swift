import TernCore

/// One tenant's entry under `tenants:`: its limits, written to the store at start-up.
struct TenantSettings: Sendable, Equatable, SettingsSection {
    var maxMessagesPerHour: Int?
    var maxMessagesPerDay: Int?
    var maxRecipientsPerMessage: Int?

    static var settings: [Setting<Self>] {
        [
            .optionalInt("max_messages_per_hour", \.maxMessagesPerHour, minimum: 1),
            .optionalInt("max_messages_per_day", \.maxMessagesPerDay, minimum: 1),
            .optionalInt("max_recipients_per_message", \.maxRecipientsPerMessage, minimum: 1),
        ]
    }

    /// `limits` with the limits this entry names replaced.
    func applied(to limits: TenantLimits) -> TenantLimits {
        var limits = limits
        if let maxMessagesPerHour { limits.maxMessagesPerHour = maxMessagesPerHour }
        if let maxMessagesPerDay { limits.maxMessagesPerDay = maxMessagesPerDay }
        if let maxRecipientsPerMessage { limits.maxRecipientsPerMessage = maxRecipientsPerMessage }
        return limits
    }
}

extension TernConfiguration {
    /// Writes the limits of the file's `tenants:` to the store, adding the tenants it names
    /// that do not exist yet: the file's values win at each start; `tern tenant set` changes
    /// the others at once, and these until the next start.
    func applyTenantSettings(to store: any Store) async throws {
        for (name, entry) in tenants.sorted(by: { $0.key < $1.key }) {
            guard Tenant.isValidName(name) else {
                throw ConfigurationError(description: "'tenants.\(name)': a tenant name is 1-64 lower-case letters, digits, '-', '_' or '.'")
            }
            if let tenant = try await store.tenant(named: name) {
                let limits = entry.applied(to: tenant.limits)
                if limits != tenant.limits { try await store.setLimits(limits, of: tenant.id) }
            } else {
                do {
                    _ = try await store.addTenant(named: name, limits: entry.applied(to: .none), createdAt: .now)
                } catch let error as StoreError where error.code == .duplicate {
                    // Another node added it at the same moment: set its limits instead.
                    guard let tenant = try await store.tenant(named: name) else { throw error }
                    try await store.setLimits(entry.applied(to: tenant.limits), of: tenant.id)
                }
            }
        }
    }
}
