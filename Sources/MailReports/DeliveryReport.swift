/// What a report received at the bounce or feedback-loop address says happened.
///
/// - SeeAlso: RFC 3464 §2.3.3 (Action), RFC 5965 §3 (feedback reports), RFC 3834 §5 (Auto-Submitted)
public enum ReportKind: String, Sendable, Hashable, CaseIterable {
    /// At least one recipient failed for good (a DSN `Action: failed`, or a non-delivery report).
    case bounce
    /// No recipient failed, and delivery to at least one is still being retried (`Action: delayed`).
    case delay
    /// A feedback report (ARF): a recipient or their provider reported the message.
    case complaint
    /// An automatic reply (out of office, vacation): never a bounce, whatever its text says.
    case autoReply = "auto_reply"
    /// A positive DSN: every recipient was `delivered`, `relayed` or `expanded` (RFC 3464 §2.3.3).
    case delivered
    /// Not recognised as any of the above.
    case unknown
}

/// What became of one recipient, as the report says (RFC 3464 §2.3.3) or, for complaints,
/// `complained` (RFC 5965 has no per-recipient action; Tern reads `Original-Rcpt-To` as one).
public enum ReportAction: String, Sendable, Hashable, CaseIterable {
    case failed
    case delayed
    case delivered
    case relayed
    case expanded
    case complained
}

/// Whether a failure is about the address itself (hard) or about this message, this moment or
/// the sender (soft). See ``BounceClassifier`` for the rules.
public enum BounceClass: String, Sendable, Hashable, CaseIterable {
    case hard
    case soft
}

/// One recipient named in a report.
///
/// - SeeAlso: RFC 3464 §2.3 (per-recipient fields)
public struct ReportRecipient: Sendable, Equatable {
    /// The address the report is about: `Final-Recipient` (RFC 3464 §2.3.2) without its
    /// address type, or the address a plain-text bounce or a complaint names.
    public var address: String
    /// `Original-Recipient` (RFC 3464 §2.3.1) without its address type, as given in ORCPT.
    public var originalRecipient: String?
    public var action: ReportAction
    /// The most specific enhanced status code the report states (`5.1.1`; RFC 3463), or, when it
    /// states none, one derived from the basic reply code and the diagnostic's wording.
    public var status: String?
    /// The diagnostic text without its type (`550 5.1.1 <a@example.com>: User unknown`;
    /// RFC 3464 §2.3.6), folded lines joined with one space.
    public var diagnostic: String?
    /// The host that gave the diagnostic, without its type (`mx.example.net`; RFC 3464 §2.3.5).
    public var remoteMTA: String?
    /// `Last-Attempt-Date`, as written (RFC 3464 §2.3.7).
    public var lastAttemptDate: String?
    /// `Will-Retry-Until`, as written, for delays (RFC 3464 §2.3.9).
    public var willRetryUntil: String?
    /// Hard or soft for `failed` and `delayed` recipients (a delay is always soft); nil otherwise.
    public var bounceClass: BounceClass?
    /// Whether Tern should stop sending to ``address``: hard bounces, and complaints other than
    /// `not-spam` and `auth-failure`. Never for delays, policy blocks or full mailboxes.
    public var suppress: Bool

    public init(
        address: String,
        originalRecipient: String? = nil,
        action: ReportAction,
        status: String? = nil,
        diagnostic: String? = nil,
        remoteMTA: String? = nil,
        lastAttemptDate: String? = nil,
        willRetryUntil: String? = nil,
        bounceClass: BounceClass? = nil,
        suppress: Bool = false
    ) {
        self.address = address
        self.originalRecipient = originalRecipient
        self.action = action
        self.status = status
        self.diagnostic = diagnostic
        self.remoteMTA = remoteMTA
        self.lastAttemptDate = lastAttemptDate
        self.willRetryUntil = willRetryUntil
        self.bounceClass = bounceClass
        self.suppress = suppress
    }
}

/// The machine-readable part of a feedback report (`message/feedback-report`).
///
/// - SeeAlso: RFC 5965 §3.1 (required fields), §3.2 (optional fields), RFC 6591 (auth-failure)
public struct FeedbackReport: Sendable, Equatable {
    /// `Feedback-Type`, lowercase: `abuse`, `fraud`, `virus`, `other`, `not-spam`, `auth-failure`…
    /// (RFC 5965 §7.3). Empty when the field is missing.
    public var feedbackType: String
    public var userAgent: String?
    public var version: String?
    /// `Original-Mail-From` without angle brackets: the envelope sender of the reported message.
    public var originalMailFrom: String?
    /// Every `Original-Rcpt-To`, without angle brackets. Often absent or redacted by providers.
    public var originalRcptTo: [String]
    /// `Arrival-Date` (or the older `Received-Date`), as written.
    public var arrivalDate: String?
    public var sourceIP: String?
    /// The first `Reported-Domain`.
    public var reportedDomain: String?
    /// `Authentication-Results` as the reporter evaluated them (RFC 8601), unfolded.
    public var authenticationResults: String?

    public init(
        feedbackType: String,
        userAgent: String? = nil,
        version: String? = nil,
        originalMailFrom: String? = nil,
        originalRcptTo: [String] = [],
        arrivalDate: String? = nil,
        sourceIP: String? = nil,
        reportedDomain: String? = nil,
        authenticationResults: String? = nil
    ) {
        self.feedbackType = feedbackType
        self.userAgent = userAgent
        self.version = version
        self.originalMailFrom = originalMailFrom
        self.originalRcptTo = originalRcptTo
        self.arrivalDate = arrivalDate
        self.sourceIP = sourceIP
        self.reportedDomain = reportedDomain
        self.authenticationResults = authenticationResults
    }
}

/// What a report gives back of the message it is about, for matching it to what Tern sent:
/// from a `message/rfc822`, `message/global`, `text/rfc822-headers` or `message/global-headers`
/// part (RFC 3462 §3, RFC 6533 §6), or from original header fields quoted in a plain-text bounce.
/// For an auto-reply, ``messageID`` is the id in its `In-Reply-To` (RFC 3834 §3.1.5).
public struct ReturnedMessage: Sendable, Equatable {
    /// `Message-ID` without angle brackets.
    public var messageID: String?
    /// `Return-Path` without angle brackets: Tern's VERP address (`b-…@bounces.example.com`).
    public var returnPath: String?
    /// `X-Tern-ID`, when the returned message has one. Tern does not add it to what it sends
    /// today: reports are matched by the VERP address (also in the returned `Return-Path`)
    /// and by `Message-ID`.
    public var ternID: String?
    /// The first address in `From`.
    public var from: String?
    /// The first address in `To`.
    public var to: String?
    /// `Subject` with RFC 2047 encoded-words decoded.
    public var subject: String?

    public init(
        messageID: String? = nil, returnPath: String? = nil, ternID: String? = nil,
        from: String? = nil, to: String? = nil, subject: String? = nil
    ) {
        self.messageID = messageID
        self.returnPath = returnPath
        self.ternID = ternID
        self.from = from
        self.to = to
        self.subject = subject
    }

    /// Whether no identifier at all was found.
    public var isEmpty: Bool {
        messageID == nil && returnPath == nil && ternID == nil && from == nil && to == nil && subject == nil
    }
}

/// A report, read: what it is, who it is about and what it returns of the original message.
///
/// For a ``ReportKind/complaint``, ``recipients`` holds one ``ReportAction/complained`` entry per
/// `Original-Rcpt-To` (the same addresses as ``FeedbackReport/originalRcptTo``); many providers
/// redact that field, so complaints are matched by ``returned`` as often as not.
public struct DeliveryReport: Sendable, Equatable {
    public var kind: ReportKind
    public var recipients: [ReportRecipient]
    public var feedback: FeedbackReport?
    public var returned: ReturnedMessage?
    /// `Reporting-MTA` without its type (RFC 3464 §2.2.2, RFC 5965 §3.2).
    public var reportingMTA: String?
    /// `Original-Envelope-Id`: the ENVID Tern gave in MAIL FROM (RFC 3461 §4.4, RFC 3464 §2.2.1).
    public var originalEnvelopeID: String?
    /// `Arrival-Date` of the DSN's per-message fields, as written (RFC 3464 §2.2.5).
    public var arrivalDate: String?
    /// How the report was read: `rfc3464`, `rfc6533` (global DSN), `arf`; for plain-text bounces
    /// the producer's style (`qmail`, `exim`, `postfix`, `sendmail`, `exchange`, `gmail`, `yahoo`,
    /// `domino`, `groupwise`, `mdaemon`, `courier`, `rfc3464-text` for DSN fields pasted into
    /// text, `text` for the generic fallback); for auto-replies `rfc3834`, `autoreply-header` or
    /// `autoreply-subject`; `unknown` otherwise.
    public var format: String

    public init(
        kind: ReportKind,
        recipients: [ReportRecipient] = [],
        feedback: FeedbackReport? = nil,
        returned: ReturnedMessage? = nil,
        reportingMTA: String? = nil,
        originalEnvelopeID: String? = nil,
        arrivalDate: String? = nil,
        format: String
    ) {
        self.kind = kind
        self.recipients = recipients
        self.feedback = feedback
        self.returned = returned
        self.reportingMTA = reportingMTA
        self.originalEnvelopeID = originalEnvelopeID
        self.arrivalDate = arrivalDate
        self.format = format
    }
}
