public import Foundation

/// What happened to a message or one of its recipients. Events are append-only and
/// are the single source of every counter.
public enum EventType: String, Sendable, CaseIterable, Codable {
    /// Accepted and durably queued (one per recipient).
    case outbound
    case sent
    /// A permanent failure: at delivery, when retries ran out, or later by a bounce report
    /// (details `async: "true"`; the recipient stays counted in `sent`).
    case failed
    case deferred
    case suppressed
    /// A feedback-loop report (RFC 5965) that the recipient marked the message as spam.
    case complaint
    case open
    case click
    case unsubscribe
    /// Mail for a customer's domain arrived at the MX (no recipient of ours).
    case inbound
    /// A report that delivery is delayed (RFC 3464 `Action: delayed`); not a final outcome.
    case delayed
    /// An out-of-office or other automatic reply (RFC 3834) to a message sent.
    case autoReply = "auto_reply"
    /// A bounce or complaint that names no message Tern sent (kept, with its inbound id).
    case unmatchedReport = "unmatched_report"
}

/// The counters every user reads. Computed from event rows, never stored separately.
///
/// For any period: `outbound = sent + failedSync + suppressed + still queued`, where
/// `failedSync = failed − failedAsync`. A recipient whose MX accepted it and that bounced
/// later stays in `sent` and is also in `failed` (and `failedAsync`), so `failedAsync ≤ sent`.
public struct Counters: Sendable, Equatable, Codable {
    public var outbound: Int
    public var sent: Int
    /// Every permanent failure: at delivery, expired, and asynchronous bounces.
    public var failed: Int
    /// The part of `failed` that came from bounce reports after the MX had accepted.
    public var failedAsync: Int
    public var suppressed: Int
    /// Temporary failures (each retry counts); not a final outcome.
    public var deferred: Int
    /// Delay reports from remote MTAs; not a final outcome.
    public var delayed: Int
    public var complaints: Int
    /// Every open and click event, machine ones included (as mailbox providers' proxies make them).
    public var opens: Int
    public var clicks: Int
    /// One-click and page unsubscribes and unsubscribe mail, once per recipient.
    public var unsubscribes: Int
    public var inbound: Int
    public var autoReplies: Int
    /// Bounces and complaints kept but matched to nothing sent.
    public var unmatchedReports: Int
    /// Recipients with at least one open (or click).
    public var uniqueOpens: Int
    public var uniqueClicks: Int
    /// Opens and clicks not classified as machine traffic (proxies, scanners).
    public var humanOpens: Int
    public var humanClicks: Int
    /// Messages refused because their tenant reached a limit (counted per clock hour: a
    /// period counts the hours that start within it).
    public var throttled: Int

    public init(
        outbound: Int = 0, sent: Int = 0, failed: Int = 0, failedAsync: Int = 0, suppressed: Int = 0, deferred: Int = 0,
        delayed: Int = 0, complaints: Int = 0, opens: Int = 0, clicks: Int = 0, unsubscribes: Int = 0, inbound: Int = 0,
        autoReplies: Int = 0, unmatchedReports: Int = 0,
        uniqueOpens: Int = 0, uniqueClicks: Int = 0, humanOpens: Int = 0, humanClicks: Int = 0, throttled: Int = 0
    ) {
        self.throttled = throttled
        self.outbound = outbound
        self.sent = sent
        self.failed = failed
        self.failedAsync = failedAsync
        self.suppressed = suppressed
        self.deferred = deferred
        self.delayed = delayed
        self.complaints = complaints
        self.opens = opens
        self.clicks = clicks
        self.unsubscribes = unsubscribes
        self.inbound = inbound
        self.autoReplies = autoReplies
        self.unmatchedReports = unmatchedReports
        self.uniqueOpens = uniqueOpens
        self.uniqueClicks = uniqueClicks
        self.humanOpens = humanOpens
        self.humanClicks = humanClicks
    }

    /// Builds counters from per-type event counts; types with no counter are ignored.
    public init(eventCounts: [EventType: Int]) {
        self.init(
            outbound: eventCounts[.outbound, default: 0],
            sent: eventCounts[.sent, default: 0],
            failed: eventCounts[.failed, default: 0],
            suppressed: eventCounts[.suppressed, default: 0],
            deferred: eventCounts[.deferred, default: 0],
            delayed: eventCounts[.delayed, default: 0],
            complaints: eventCounts[.complaint, default: 0],
            opens: eventCounts[.open, default: 0],
            clicks: eventCounts[.click, default: 0],
            unsubscribes: eventCounts[.unsubscribe, default: 0],
            inbound: eventCounts[.inbound, default: 0],
            autoReplies: eventCounts[.autoReply, default: 0],
            unmatchedReports: eventCounts[.unmatchedReport, default: 0]
        )
    }

    /// The counter names in the order they are shown.
    public static var names: [String] { Counters().values.map(\.name) }

    public var values: [(name: String, value: Int)] {
        [
            ("outbound", outbound), ("sent", sent), ("failed", failed), ("failed_async", failedAsync),
            ("suppressed", suppressed), ("deferred", deferred), ("delayed", delayed), ("complaints", complaints),
            ("opens", opens), ("clicks", clicks), ("unsubscribes", unsubscribes), ("inbound", inbound),
            ("auto_replies", autoReplies), ("unmatched_reports", unmatchedReports),
            ("unique_opens", uniqueOpens), ("unique_clicks", uniqueClicks), ("human_opens", humanOpens),
            ("human_clicks", humanClicks), ("throttled", throttled),
        ]
    }

    enum CodingKeys: String, CodingKey {
        case outbound, sent, failed, suppressed, deferred, delayed, complaints, opens, clicks, unsubscribes, inbound
        case failedAsync = "failed_async"
        case autoReplies = "auto_replies"
        case unmatchedReports = "unmatched_reports"
        case uniqueOpens = "unique_opens"
        case uniqueClicks = "unique_clicks"
        case humanOpens = "human_opens"
        case humanClicks = "human_clicks"
        case throttled
    }
}

/// A half-open time range `[from, to)`; `nil` ends are open.
public struct TimeRange: Sendable, Equatable {
    public var from: Date?
    public var to: Date?
    public init(from: Date? = nil, to: Date? = nil) {
        self.from = from
        self.to = to
    }
    public static let allTime = TimeRange()
}

extension Date {
    /// Milliseconds since 1970, the time unit of every stored timestamp.
    public var millisecondsSince1970: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
    public init(millisecondsSince1970 value: Int64) { self.init(timeIntervalSince1970: Double(value) / 1000) }
}
