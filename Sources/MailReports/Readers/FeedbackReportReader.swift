/// Reads the fields of a `message/feedback-report` body.
///
/// The fields are one group in header syntax; names and `Feedback-Type` are case-insensitive.
/// `Received-Date` (drafts before RFC 5965) is read as `Arrival-Date`.
///
/// - SeeAlso: RFC 5965 §3.1 (required: Feedback-Type, User-Agent, Version), §3.2 (optional),
///   §3.5 (the report's place in `multipart/report`), RFC 6591 §3.1 (auth-failure)
enum FeedbackReportReader {
    struct Result: Sendable {
        var feedback: FeedbackReport
        var reportingMTA: String?
        var originalEnvelopeID: String?
    }

    static func read(_ bytes: [UInt8], maxRecipients: Int) -> Result? {
        let fields = ReportFieldReader.fields(bytes)
        func value(_ name: String) -> String? {
            fields.first { $0.name == name }?.value.nonEmpty
        }
        let feedbackType = value("feedback-type").map { ReportValue.removingComments($0).trimmedMailWhitespace().asciiLowercased() }
        // A report needs its type, or at least the fields that say what was reported.
        guard feedbackType != nil || value("user-agent") != nil || value("original-rcpt-to") != nil
            || value("original-mail-from") != nil else { return nil }
        let recipients = fields.filter { $0.name == "original-rcpt-to" }
            .compactMap { ReportValue.address($0.value) }
            .prefix(maxRecipients)
        let feedback = FeedbackReport(
            feedbackType: feedbackType ?? "",
            userAgent: value("user-agent"),
            version: value("version"),
            originalMailFrom: value("original-mail-from").flatMap { ReportValue.address($0) },
            originalRcptTo: Array(recipients),
            arrivalDate: value("arrival-date") ?? value("received-date"),
            sourceIP: value("source-ip").map { ReportValue.removingComments($0).trimmedMailWhitespace() }?.nonEmpty,
            reportedDomain: value("reported-domain"),
            authenticationResults: value("authentication-results")
        )
        return Result(
            feedback: feedback,
            reportingMTA: value("reporting-mta").flatMap(ReportValue.mtaName),
            originalEnvelopeID: value("original-envelope-id")
        )
    }

    /// Whether a complaint of this type asks Tern to stop mailing the recipient: yes for `abuse`,
    /// `fraud`, `virus`, `other` and unknown types; no for `not-spam` (the opposite wish) and
    /// `auth-failure` (RFC 6591: about authentication, not the recipient's wish).
    static func suppresses(feedbackType: String) -> Bool {
        feedbackType != "not-spam" && feedbackType != "auth-failure"
    }
}
