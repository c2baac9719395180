import Foundation
import MailReports
public import TernCore

/// Reads one report that arrived at the MX (a bounce, delay, complaint, auto-reply or
/// unsubscribe mail) and says what it means for the recipients Tern sent to.
///
/// A report is matched to the recipient it is about, in order:
/// 1. the VERP token of the address it was sent to (`b-TOKEN@…`, `unsubscribe+TOKEN@…`);
/// 2. a VERP token in the `Return-Path` of the message it returns (complaints carry the
///    message as delivered);
/// 3. the returned `Message-ID` among the messages Tern sent, and the address the report
///    names (or the message's only recipient).
///
/// What matches nothing is kept and counted (`unmatched_report`), never dropped.
public struct ReportReader: Sendable {
    private let keys: TrackingKeys
    private let addresses: InboundAddressBook
    private let store: any Store

    public init(keys: TrackingKeys, addresses: InboundAddressBook, store: any Store) {
        self.keys = keys
        self.addresses = addresses
        self.store = store
    }

    /// At most this many sent recipients are read for one `Message-ID`.
    static let messageIDMatchLimit = 1000

    public func read(_ message: InboundMessage) async throws -> ReportOutcome {
        let destinations = message.recipients.compactMap(addresses.destination(of:))
        let inbound = message.id.description
        let at = message.receivedAt

        for case .unsubscribe(let token) in destinations {
            guard let recipient = try await known(token) else {
                return unmatched("unsubscribe", at: at, details: ["inbound_id": inbound, "reason": "no such recipient"])
            }
            return ReportOutcome(
                kind: "unsubscribe",
                events: [ReportEvent(
                    type: .unsubscribe, messageID: recipient.messageID, recipientID: recipient.id, at: at,
                    details: ["method": "mailto", "inbound_id": inbound, "from": message.mailFrom])],
                suppressions: [])
        }

        let report = ReportParser.parse(message.content)
        var tokenRecipient: RecipientSummary?
        for case .bounce(let token?) in destinations {
            tokenRecipient = try await known(token)
            if tokenRecipient != nil { break }
        }
        if tokenRecipient == nil, let returnPath = report.returned?.returnPath, let token = bounceToken(in: returnPath) {
            tokenRecipient = try await known(token)
        }
        var byMessageID: [RecipientSummary] = []
        if let id = report.returned?.messageID, !id.isEmpty {
            byMessageID = try await store.recipients(messageIDHeader: "<\(id)>", limit: Self.messageIDMatchLimit)
        }
        let match = Matcher(token: tokenRecipient, byMessageID: byMessageID)

        var common = ["inbound_id": inbound, "format": report.format]
        if let mta = report.reportingMTA { common["reporting_mta"] = mta }

        switch report.kind {
        case .bounce, .delay:
            var events: [ReportEvent] = []
            var suppressions: [Suppression] = []
            let reported = report.recipients.filter { $0.action == .failed || $0.action == .delayed }
            for entry in reported {
                var details = common
                details["address"] = entry.address
                details["status"] = entry.status
                details["diagnostic"] = entry.diagnostic
                details["remote_mta"] = entry.remoteMTA
                guard let recipient = match.recipient(named: [entry.address, entry.originalRecipient], soleEntry: reported.count == 1) else {
                    details["reason"] = "no recipient matched"
                    events.append(ReportEvent(type: .unmatchedReport, messageID: nil, recipientID: nil, at: at, details: details))
                    continue
                }
                if entry.action == .failed {
                    details["async"] = "true"
                    details["bounce_class"] = (entry.bounceClass ?? .soft).rawValue
                    events.append(ReportEvent(type: .failed, messageID: recipient.messageID, recipientID: recipient.id, at: at, details: details))
                    if entry.suppress {
                        suppressions.append(Suppression(
                            address: recipient.address.lowercased(), domain: "", tenant: recipient.tenant,
                            reason: "hard bounce" + (entry.status.map { " \($0)" } ?? ""), createdAt: at))
                    }
                } else {
                    events.append(ReportEvent(type: .delayed, messageID: recipient.messageID, recipientID: recipient.id, at: at, details: details))
                }
            }
            if reported.isEmpty {
                var details = common
                details["reason"] = "a \(report.kind.rawValue) report that names no recipient"
                if let recipient = match.token, report.kind == .bounce {
                    // The VERP address names the recipient even when the text does not.
                    details["async"] = "true"
                    details["bounce_class"] = BounceClass.soft.rawValue
                    events.append(ReportEvent(type: .failed, messageID: recipient.messageID, recipientID: recipient.id, at: at, details: details))
                } else {
                    events.append(ReportEvent(type: .unmatchedReport, messageID: nil, recipientID: nil, at: at, details: details))
                }
            }
            return ReportOutcome(kind: report.kind.rawValue, events: events, suppressions: suppressions)

        case .complaint:
            let feedback = report.feedback
            var details = common
            details["feedback_type"] = feedback?.feedbackType
            details["user_agent"] = feedback?.userAgent
            details["source_ip"] = feedback?.sourceIP
            details["arrival_date"] = feedback?.arrivalDate
            let named = report.recipients.map(\.address) + (feedback?.originalRcptTo ?? [])
            guard let recipient = match.recipient(named: named, soleEntry: true) else {
                details["reason"] = "no recipient matched"
                return ReportOutcome(
                    kind: report.kind.rawValue,
                    events: [ReportEvent(type: .unmatchedReport, messageID: nil, recipientID: nil, at: at, details: details)],
                    suppressions: [])
            }
            // not-spam and auth-failure reports do not stop mail (RFC 5965 §7.3, RFC 6591).
            let suppress = report.recipients.first?.suppress ?? !["not-spam", "auth-failure"].contains(feedback?.feedbackType ?? "")
            return ReportOutcome(
                kind: report.kind.rawValue,
                events: [ReportEvent(type: .complaint, messageID: recipient.messageID, recipientID: recipient.id, at: at, details: details)],
                suppressions: suppress
                    ? [Suppression(
                        address: recipient.address.lowercased(), domain: "", tenant: recipient.tenant,
                        reason: "complaint (\(feedback?.feedbackType ?? "abuse"))", createdAt: at)]
                    : [])

        case .autoReply:
            var details = common
            details["from"] = message.mailFrom
            details["subject"] = report.returned?.subject
            let recipient = match.recipient(named: [], soleEntry: true)
            return ReportOutcome(
                kind: report.kind.rawValue,
                events: [ReportEvent(type: .autoReply, messageID: recipient?.messageID, recipientID: recipient?.id, at: at, details: details)],
                suppressions: [])

        case .delivered:
            // A positive DSN: nothing to count; the message stays in the store.
            return ReportOutcome(kind: report.kind.rawValue, events: [], suppressions: [])

        case .unknown:
            var details = common
            details["reason"] = "not a report Tern can read"
            details["from"] = message.mailFrom
            return unmatched(report.kind.rawValue, at: at, details: details)
        }
    }

    private func unmatched(_ kind: String, at: Date, details: [String: String]) -> ReportOutcome {
        ReportOutcome(
            kind: kind, events: [ReportEvent(type: .unmatchedReport, messageID: nil, recipientID: nil, at: at, details: details)],
            suppressions: [])
    }

    /// The recipient a verified token names, if it (still) exists.
    private func known(_ token: TrackingToken) async throws -> RecipientSummary? {
        guard let recipient = try await store.recipientSummary(token.recipientID), recipient.messageID == token.messageID else {
            return nil
        }
        return recipient
    }

    /// The bounce token of a VERP address (`b-TOKEN@…`, perhaps in angle brackets).
    func bounceToken(in address: String) -> TrackingToken? {
        var text = Substring(address.trimmingCharacters(in: .whitespaces))
        if text.hasPrefix("<") { text = text.dropFirst() }
        if text.hasSuffix(">") { text = text.dropLast() }
        guard let at = text.lastIndex(of: "@") else { return nil }
        let local = text[..<at].lowercased()
        guard local.hasPrefix(ReturnPaths.bouncePrefix),
            let token = keys.verifyAddressToken(local.dropFirst(ReturnPaths.bouncePrefix.count)), token.kind == .bounce
        else { return nil }
        return token
    }

    /// Picks the sent recipient a report entry is about.
    struct Matcher {
        let token: RecipientSummary?
        let byMessageID: [RecipientSummary]

        /// The token's recipient when the report is about one address (VERP names exactly one)
        /// or names it; else the recipient of the returned message with one of `names`; else
        /// that message's only recipient.
        func recipient(named names: [String?], soleEntry: Bool) -> RecipientSummary? {
            let wanted = Set(names.compactMap { $0?.lowercased() }.filter { !$0.isEmpty })
            if let token, soleEntry || wanted.contains(token.address.lowercased()) { return token }
            if let found = byMessageID.first(where: { wanted.contains($0.address.lowercased()) }) { return found }
            if token == nil, byMessageID.count == 1, soleEntry { return byMessageID[0] }
            return nil
        }
    }
}
