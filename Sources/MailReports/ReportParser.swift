public import MailMessage

/// Reads a message received at Tern's bounce or feedback-loop address into a ``DeliveryReport``.
///
/// In order, the first that applies:
/// 1. A `message/delivery-status` or `message/global-delivery-status` part with at least one
///    recipient (RFC 3464, RFC 6533) — also the second part of a `multipart/report;
///    report-type=delivery-status` mislabelled as text: a DSN (`bounce`, `delay` or `delivered`),
///    whatever else the message says.
/// 2. A `message/feedback-report` part (RFC 5965): a `complaint`.
/// 3. An automatic reply (RFC 3834; see ``AutoReplyDetector``): `auto_reply`, never a bounce.
/// 4. A plain-text bounce (see ``PlainBounceReader``): `bounce` or `delay`.
/// 5. Otherwise `unknown`.
///
/// Parsing never fails and never traps: broken MIME is read as far as it goes.
///
/// - SeeAlso: RFC 3462 (multipart/report), RFC 3464, RFC 5965, RFC 6533, RFC 3834
public enum ReportParser {
    public static func parse(_ bytes: [UInt8], limits: ReportLimits = ReportLimits()) -> DeliveryReport {
        parse(MailMessage(bytes, limits: limits.mime), limits: limits)
    }

    /// Reads a message that is already parsed.
    public static func parse(_ message: MailMessage, limits: ReportLimits = ReportLimits()) -> DeliveryReport {
        let parts = message.allParts
        if let report = deliveryStatusNotification(message, parts: parts, limits: limits) { return report }
        if let report = feedbackReport(message, parts: parts, limits: limits) { return report }

        let header = ReportHeader(message.header)
        let traits = MessageTraits(header, root: message.root)
        if let format = AutoReplyDetector.detect(header, traits: traits) {
            var returned = ReturnedMessageReader.fromParts(message, parts: parts, limits: limits) ?? ReturnedMessage()
            if let id = AutoReplyDetector.repliedMessageID(header) { returned.messageID = id }
            return DeliveryReport(kind: .autoReply, returned: returned.isEmpty ? nil : returned, format: format)
        }

        let texts = BodyText.extract(message, parts: parts, limit: limits.maxScannedBytes)
        let human = ScannedText(texts.human)
        if let bounce = PlainBounceReader.read(message, header: header, traits: traits, text: human, limits: limits) {
            return DeliveryReport(
                kind: bounce.delayed ? .delay : .bounce,
                recipients: bounce.recipients,
                returned: returned(message, parts: parts, texts: texts, limits: limits),
                reportingMTA: bounce.status?.reportingMTA,
                originalEnvelopeID: bounce.status?.originalEnvelopeID,
                arrivalDate: bounce.status?.arrivalDate,
                format: bounce.format
            )
        }
        return DeliveryReport(kind: .unknown, returned: ReturnedMessageReader.fromParts(message, parts: parts, limits: limits), format: "unknown")
    }

    // MARK: - RFC 3464 / RFC 6533

    static let deliveryStatusTypes: Set<String> = ["message/delivery-status", "message/global-delivery-status"]

    static func deliveryStatusNotification(_ message: MailMessage, parts: [MIMEPart], limits: ReportLimits) -> DeliveryReport? {
        var candidates: [(part: MIMEPart, global: Bool)] = []
        for part in parts where deliveryStatusTypes.contains(part.contentType.mimeType) {
            candidates.append((part, part.contentType.subtype == "global-delivery-status"))
        }
        // A report whose status part is labelled as something else (text/plain, say).
        for part in parts where part.contentType.mimeType == "multipart/report" {
            let reportType = part.contentType.parameters["report-type"]?.asciiLowercased()
            guard reportType == "delivery-status" || reportType == "global-delivery-status" else { continue }
            for child in part.children.dropFirst() where !deliveryStatusTypes.contains(child.contentType.mimeType)
                && !ReturnedMessageReader.returnedTypes.contains(child.contentType.mimeType) && child.isLeaf {
                candidates.append((child, reportType == "global-delivery-status"))
            }
        }
        for candidate in candidates {
            let body = message.decodedBody(of: candidate.part) ?? Array(message.body(of: candidate.part))
            let status = DeliveryStatusReader.read(Array(body.prefix(limits.maxScannedBytes)), maxRecipients: limits.maxRecipients)
            guard !status.recipients.isEmpty else { continue }
            let kind: ReportKind
            if status.recipients.contains(where: { $0.action == .failed }) {
                kind = .bounce
            } else if status.recipients.contains(where: { $0.action == .delayed }) {
                kind = .delay
            } else {
                kind = .delivered
            }
            return DeliveryReport(
                kind: kind,
                recipients: status.recipients,
                returned: returned(message, parts: parts, texts: nil, limits: limits),
                reportingMTA: status.reportingMTA,
                originalEnvelopeID: status.originalEnvelopeID,
                arrivalDate: status.arrivalDate,
                format: candidate.global ? "rfc6533" : "rfc3464"
            )
        }
        return nil
    }

    // MARK: - RFC 5965

    static func feedbackReport(_ message: MailMessage, parts: [MIMEPart], limits: ReportLimits) -> DeliveryReport? {
        var candidates = parts.filter { $0.contentType.mimeType == "message/feedback-report" }
        for part in parts where part.contentType.mimeType == "multipart/report"
            && part.contentType.parameters["report-type"]?.asciiLowercased() == "feedback-report" && part.children.count > 1 {
            let second = part.children[1]
            if second.isLeaf, second.contentType.mimeType != "message/feedback-report" { candidates.append(second) }
        }
        for part in candidates {
            let body = message.decodedBody(of: part) ?? Array(message.body(of: part))
            guard let result = FeedbackReportReader.read(Array(body.prefix(limits.maxScannedBytes)), maxRecipients: limits.maxRecipients) else {
                continue
            }
            let suppress = FeedbackReportReader.suppresses(feedbackType: result.feedback.feedbackType)
            return DeliveryReport(
                kind: .complaint,
                recipients: result.feedback.originalRcptTo.map { ReportRecipient(address: $0, action: .complained, suppress: suppress) },
                feedback: result.feedback,
                returned: returned(message, parts: parts, texts: nil, limits: limits),
                reportingMTA: result.reportingMTA,
                originalEnvelopeID: result.originalEnvelopeID,
                format: "arf"
            )
        }
        return nil
    }

    // MARK: - The returned message

    /// The returned-message part's identifiers, else those quoted in the text.
    static func returned(_ message: MailMessage, parts: [MIMEPart], texts: BodyText.Texts?, limits: ReportLimits) -> ReturnedMessage? {
        if let fromPart = ReturnedMessageReader.fromParts(message, parts: parts, limits: limits) { return fromPart }
        let all = texts?.all ?? BodyText.extract(message, parts: parts, limit: limits.maxScannedBytes).all
        return ReturnedMessageReader.fromText(all, lines: Bytes.lines(all))
    }
}
