public import MailMessage

/// The limits the report parser keeps to. Past a limit it reads less, never fails.
public struct ReportLimits: Sendable, Hashable {
    /// Most recipients read from one report; the rest are ignored.
    public static let defaultMaxRecipients = 1_000
    /// Most octets of human-readable text (and of one `message/delivery-status` or
    /// `message/feedback-report` body) that are scanned; a report's own text is short.
    public static let defaultMaxScannedBytes = 256 * 1024
    /// Most octets of a returned message (or its header part) read for its header fields.
    public static let defaultMaxReturnedHeaderBytes = 64 * 1024

    public var maxRecipients: Int
    public var maxScannedBytes: Int
    public var maxReturnedHeaderBytes: Int
    /// The limits for the MIME parse of the report itself.
    public var mime: MIMELimits

    public init(
        maxRecipients: Int = Self.defaultMaxRecipients,
        maxScannedBytes: Int = Self.defaultMaxScannedBytes,
        maxReturnedHeaderBytes: Int = Self.defaultMaxReturnedHeaderBytes,
        mime: MIMELimits = MIMELimits()
    ) {
        self.maxRecipients = maxRecipients
        self.maxScannedBytes = maxScannedBytes
        self.maxReturnedHeaderBytes = maxReturnedHeaderBytes
        self.mime = mime
    }
}
