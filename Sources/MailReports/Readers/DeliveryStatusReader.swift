/// The fields of a `message/delivery-status` (RFC 3464) or `message/global-delivery-status`
/// (RFC 6533 §6.1) body, read into per-message values and per-recipient entries.
struct DeliveryStatus: Sendable {
    var reportingMTA: String?
    var originalEnvelopeID: String?
    var arrivalDate: String?
    var recipients: [ReportRecipient]
}

/// Reads delivery-status content.
///
///     delivery-status-content = per-message-fields 1*( CRLF per-recipient-fields )
///
/// Lenient: a missing empty line between groups is recovered from the fields themselves — a
/// per-recipient field that its group already has starts the next group, as does a recipient
/// address once the group has an address and an `Action` or `Status` — and the per-message group
/// may be missing. Field order within a group is free (Postfix writes `Final-Recipient` first,
/// Amazon SES `Action` first).
///
/// - SeeAlso: RFC 3464 §2.1.1 (syntax), §2.2 (per-message fields), §2.3 (per-recipient fields)
enum DeliveryStatusReader {
    /// Fields that belong to a recipient group (RFC 3464 §2.3).
    static let recipientFields: Set<String> = [
        "original-recipient", "final-recipient", "action", "status", "remote-mta", "diagnostic-code",
        "last-attempt-date", "final-log-id", "will-retry-until",
    ]
    static let addressFields: Set<String> = ["original-recipient", "final-recipient"]
    /// Fields that belong to the per-message group (RFC 3464 §2.2).
    static let perMessageFields: Set<String> = [
        "original-envelope-id", "reporting-mta", "dsn-gateway", "received-from-mta", "arrival-date",
    ]

    static func read(_ bytes: [UInt8], maxRecipients: Int) -> DeliveryStatus {
        var perMessage: [ReportField] = []
        var groups: [[ReportField]] = []
        var current: [ReportField]? = nil
        var inPerMessage = true

        for item in ReportFieldReader.items(bytes) {
            switch item {
            case .separator:
                if let group = current {
                    groups.append(group)
                    current = nil
                }
                if inPerMessage, !perMessage.isEmpty { inPerMessage = false }
            case .field(let field):
                if recipientFields.contains(field.name) {
                    inPerMessage = false
                    if var group = current {
                        let repeats = group.contains { $0.name == field.name }
                        let nextAddress = addressFields.contains(field.name)
                            && group.contains { addressFields.contains($0.name) }
                            && group.contains { $0.name == "action" || $0.name == "status" }
                        if repeats || nextAddress {
                            groups.append(group)
                            current = [field]
                        } else {
                            group.append(field)
                            current = group
                        }
                    } else {
                        current = [field]
                    }
                } else if inPerMessage || (groups.isEmpty && current == nil && perMessageFields.contains(field.name)) {
                    perMessage.append(field)
                } else if current != nil {
                    current?.append(field)
                } else {
                    current = [field] // an extension field that opens a recipient group
                }
            }
        }
        if let group = current { groups.append(group) }

        func value(_ fields: [ReportField], _ name: String) -> String? {
            fields.first { $0.name == name }?.value.nonEmpty
        }
        var recipients: [ReportRecipient] = []
        for group in groups {
            guard recipients.count < maxRecipients else { break }
            let final = value(group, "final-recipient").flatMap { ReportValue.address($0) }
            let original = value(group, "original-recipient").flatMap { ReportValue.address($0, xtext: true) }
            guard let address = final ?? original else { continue }
            recipients.append(recipient(
                address: address,
                originalRecipient: original,
                action: value(group, "action"),
                status: value(group, "status"),
                diagnostic: value(group, "diagnostic-code").flatMap(ReportValue.diagnostic),
                remoteMTA: value(group, "remote-mta").flatMap(ReportValue.mtaName),
                lastAttemptDate: value(group, "last-attempt-date"),
                willRetryUntil: value(group, "will-retry-until")
            ))
        }
        return DeliveryStatus(
            reportingMTA: value(perMessage, "reporting-mta").flatMap(ReportValue.mtaName),
            originalEnvelopeID: value(perMessage, "original-envelope-id").map { ReportValue.removingComments($0).trimmedMailWhitespace() }?.nonEmpty,
            arrivalDate: value(perMessage, "arrival-date"),
            recipients: recipients
        )
    }

    /// One recipient with its status resolved and classified.
    ///
    /// The status is the `Status` field's code, unless that says only `X.0.0` and the diagnostic
    /// has a more specific code of the same class; with no `Status`, the diagnostic's code, else
    /// one derived from its reply code and wording. A missing or unknown `Action` follows the
    /// status class (5 failed, 4 delayed, 2 delivered), else `failed`.
    static func recipient(
        address: String, originalRecipient: String?, action rawAction: String?, status rawStatus: String?,
        diagnostic: String?, remoteMTA: String?, lastAttemptDate: String?, willRetryUntil: String?
    ) -> ReportRecipient {
        let text = Bytes.lowercased((diagnostic ?? "").utf8)
        let diagnosticCode = EnhancedStatusCode.first(in: text)
        let basic = ReplyCode.first(in: text)
        let hits = Phrases.scan(text)
        var status = rawStatus.flatMap { EnhancedStatusCode.first(in: Array($0.utf8)) }
        if let stated = status, stated.subject == 0, stated.detail == 0, let specific = diagnosticCode,
           specific.statusClass == stated.statusClass, specific.subject != 0 || specific.detail != 0 {
            status = specific
        }
        if status == nil {
            status = diagnosticCode ?? BounceClassifier.derivedStatus(basic: basic, hits: hits, permanent: true)
        }
        let action = readAction(rawAction, statusClass: status?.statusClass ?? basic.map { $0 / 100 })
        var entry = ReportRecipient(
            address: address, originalRecipient: originalRecipient, action: action, status: status?.description,
            diagnostic: diagnostic, remoteMTA: remoteMTA, lastAttemptDate: lastAttemptDate, willRetryUntil: willRetryUntil
        )
        classify(&entry, basic: basic, code: status, hits: hits)
        return entry
    }

    /// RFC 3464 §2.3.3: `failed` / `delayed` / `delivered` / `relayed` / `expanded`, any case,
    /// comments allowed.
    static func readAction(_ raw: String?, statusClass: Int?) -> ReportAction {
        let token = raw.map { ReportValue.removingComments($0).trimmedMailWhitespace().asciiLowercased() } ?? ""
        switch token {
        case "failed", "failure", "fail": return .failed
        case "delayed", "delay": return .delayed
        case "delivered": return .delivered
        case "relayed": return .relayed
        case "expanded": return .expanded
        default:
            switch statusClass {
            case 4: return .delayed
            case 2: return .delivered
            default: return .failed
            }
        }
    }

    /// Sets the class and suppression of a recipient: failures per ``BounceClassifier``, delays
    /// always soft and never suppressed, successes neither.
    static func classify(_ entry: inout ReportRecipient, basic: Int?, code: EnhancedStatusCode?, hits: PhraseHits) {
        switch entry.action {
        case .failed:
            let result = BounceClassifier.classify(basic: basic, code: code, hits: hits)
            entry.bounceClass = result.bounceClass
            entry.suppress = result.suppress
        case .delayed:
            entry.bounceClass = .soft
            entry.suppress = false
        case .delivered, .relayed, .expanded, .complained:
            entry.bounceClass = nil
            entry.suppress = false
        }
    }
}
