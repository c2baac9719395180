import MailMessage

/// Reads bounces that carry no `message/delivery-status`: the plain-text reports that qmail,
/// Exim, Postfix and Sendmail without DSN, Exchange, Gmail, Yahoo, Domino, GroupWise, MDaemon and
/// Courier write (alone, or as the first part of a `multipart/mixed`).
///
/// Each style is recognised by its own wording and read by its own layout; the generic fallback
/// (`<address>:` paragraphs, an SMTP transcript, addresses after "the following recipients",
/// `X-Failed-Recipients`) runs only for a message that looks like a bounce (a mail-system
/// sender, a bounce subject, a null return path, `multipart/report`, `X-Failed-Recipients`).
/// Text after the line that introduces the returned copy of the message is never read for
/// recipients.
enum PlainBounceReader {
    struct Candidate: Sendable {
        var address: String
        var diagnostic: String?
    }

    struct Found: Sendable {
        var format: String
        var candidates: [Candidate]
        /// DSN fields pasted into text, already read.
        var status: DeliveryStatus? = nil
    }

    /// What the plain-text reader found.
    struct Result: Sendable {
        var format: String
        var recipients: [ReportRecipient]
        var delayed: Bool
        /// The per-message fields when the text held DSN fields.
        var status: DeliveryStatus?
    }

    static func phrases(_ list: [String]) -> [[UInt8]] { list.map { Array($0.utf8) } }

    // MARK: - Whether it is a bounce at all

    static let senderLocalParts: Set<String> = ["mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mdaemon", "mail.daemon"]
    static let senderNamePhrases = phrases(["mail delivery", "mailer-daemon", "mailer daemon", "mail administrator", "postmaster", "mail router", "delivery subsystem"])
    static let subjectPhrases = phrases([
        "undeliver", "delivery status notification", "delivery failure", "delivery failed", "failure notice",
        "returned mail", "mail delivery failed", "delivery has failed", "could not be delivered", "nondeliverable",
        "non-delivery", "non delivery", "delivery notification", "mail system error", "not delivered", "delayed mail",
        "delivery delayed", "warning: could not send", "delivery report", "returned to sender", "mail returned",
        "delivery problem", "rejected:", "delivery incomplete", "message delayed",
    ])

    /// Whether a message comes from a mail system rather than a person or their autoresponder:
    /// `X-Failed-Recipients`, `multipart/report`, or a `From` such as `MAILER-DAEMON@…`,
    /// `postmaster@…`, `Mail Delivery System <…>`.
    static func isFromMailSystem(_ header: ReportHeader, root: MIMEPart) -> Bool {
        if header.contains("x-failed-recipients") { return true }
        if root.contentType.mimeType == "multipart/report" { return true }
        guard let from = header.value("from") else { return false }
        if let address = ReturnedMessageReader.firstAddress(in: from), let at = address.utf8.lastIndex(of: UInt8(ascii: "@")) {
            let local = address[..<at].asciiLowercased()
            if senderLocalParts.contains(local) || local.hasPrefix("microsoftexchange") { return true }
        }
        let lower = Bytes.lowercased(from.utf8)
        return senderNamePhrases.contains { Bytes.contains($0, in: lower) }
    }

    // MARK: - Markers

    /// Lines that introduce the returned copy of the original message (or its header).
    static let copyMarkers = phrases([
        "below this line is a copy of the message", "this is a copy of the message", "original message follows",
        "----- original message -----", "original message headers", "--- original message ---",
        "possibly truncated original message follows", "returned mail follows", "unsent message follows",
        "the header of the original message is following", "message headers follow", "----- message header follows",
        "------ original message header", "headers of the original message", "a copy of the original message below",
        "--- the header of the original message", "original message header:", "undelivered message headers",
    ])

    static let delaySubjectPhrases = phrases([
        "(delay)", "delayed mail", "delivery delayed", "message delayed", "delivery delay", "warning: could not send",
        "still being retried", "not yet been delivered", "mail delivery delayed", "delayed:", "delivery incomplete",
    ])
    static let delayBodyPhrases = phrases([
        "this is a warning only", "this is a warning message only", "will keep trying", "has not yet been delivered",
        "have not yet been delivered", "will continue to try", "delivery attempts will continue", "will retry",
        "will be retried", "still trying", "has been delayed", "delivery is delayed", "delivery delayed",
        "transient non-fatal errors", "temporary problem delivering", "you do not need to resend",
        "not yet been delivered", "delay reason:", "message delayed", "will try again",
    ])
    static let permanentBodyPhrases = phrases([
        "permanent error", "failed permanently", "permanent fatal", "i've given up", "i'm not going to try again",
        "giving up", "gave up", "retry timeout exceeded", "will not be retried", "removed from the mail queue",
        "delivery has failed to these recipients", "permanent failure", "could not be delivered for",
    ])

    // MARK: - Reading

    static func read(
        _ message: MailMessage, header: ReportHeader, traits: MessageTraits, text: ScannedText, limits: ReportLimits
    ) -> Result? {
        let cut = text.lineIndex(containing: copyMarkers) ?? text.lines.count
        let bounceLike = traits.looksLikeBounce
        let delayed = isDelay(traits, text: text, cut: cut)

        var found: Found? = nil
        let end = cut < text.lines.count ? text.lines[cut].lowerBound : text.lower.count
        let present = detectorIndex.scan(text.lower, range: 0..<end)
        for (index, detector) in detectors.enumerated() {
            guard detector.always || bounceLike else { continue }
            guard detector.gate == nil || present.contains(DetectorSet(rawValue: 1 << UInt64(index))) else { continue }
            if let result = detector.read(text, cut, message), !result.candidates.isEmpty || result.status != nil {
                found = result
                break
            }
        }
        if found == nil, bounceLike {
            let failed = header.values("x-failed-recipients")
                .flatMap { $0.split(separator: ",") }
                .compactMap { ReportValue.address(String($0)) }
            if !failed.isEmpty {
                found = Found(format: "text", candidates: failed.map { Candidate(address: $0, diagnostic: nil) })
            }
        }
        guard let found else { return nil }
        if let status = found.status {
            let recipients = Array(status.recipients.prefix(limits.maxRecipients))
            let kindDelayed = !recipients.contains { $0.action == .failed } && recipients.contains { $0.action == .delayed }
            return Result(format: found.format, recipients: recipients, delayed: kindDelayed, status: status)
        }

        // Our own addresses are never the failed recipient.
        var excluded: Set<String> = []
        for name in ["to", "delivered-to", "x-original-to", "return-path"] {
            for value in header.values(name) {
                if let address = ReturnedMessageReader.firstAddress(in: value) { excluded.insert(address.asciiLowercased()) }
            }
        }
        let fallbackDiagnostic = found.candidates.count == 1 ? messageDiagnostic(text, cut: cut) : nil
        var seen: [String: Int] = [:]
        var recipients: [ReportRecipient] = []
        for candidate in found.candidates {
            let key = candidate.address.asciiLowercased()
            guard !excluded.contains(key), !isMailSystemAddress(key) else { continue }
            let diagnostic = (candidate.diagnostic?.collapsingWhitespace().nonEmpty ?? fallbackDiagnostic)
            if let index = seen[key] {
                if recipients[index].diagnostic == nil, let diagnostic {
                    recipients[index] = recipient(candidate.address, diagnostic: diagnostic, delayed: delayed)
                }
                continue
            }
            guard recipients.count < limits.maxRecipients else { break }
            seen[key] = recipients.count
            recipients.append(recipient(candidate.address, diagnostic: diagnostic, delayed: delayed))
        }
        guard !recipients.isEmpty else { return nil }
        return Result(format: found.format, recipients: recipients, delayed: delayed, status: nil)
    }

    /// Whether an address is a mail system's own (`MAILER-DAEMON@…`, `postmaster@…`).
    static func isMailSystemAddress(_ lowercasedAddress: String) -> Bool {
        guard let at = lowercasedAddress.utf8.lastIndex(of: UInt8(ascii: "@")) else { return true }
        return senderLocalParts.contains(String(lowercasedAddress[..<at]))
    }

    /// A delay warning: the subject says so, or the text says delivery goes on and nothing says it
    /// stopped for good.
    static func isDelay(_ traits: MessageTraits, text: ScannedText, cut: Int) -> Bool {
        if delaySubjectPhrases.contains(where: { Bytes.contains($0, in: traits.lowercasedSubject) }) { return true }
        let end = cut < text.lines.count ? text.lines[cut].lowerBound : text.lower.count
        let said = delayIndex.scan(text.lower, range: 0..<end)
        return said.contains(.delaySaid) && !said.contains(.permanentSaid)
    }

    static let delayIndex = PhraseIndex<PhraseHits>([
        (.delaySaid, delayBodyPhrases.map { String(decoding: $0, as: UTF8.self) }),
        (.permanentSaid, permanentBodyPhrases.map { String(decoding: $0, as: UTF8.self) }),
    ])

    /// One recipient from a plain-text bounce, its status and class read from the diagnostic.
    static func recipient(_ address: String, diagnostic: String?, delayed: Bool) -> ReportRecipient {
        let text = Bytes.lowercased((diagnostic ?? "").utf8)
        let basic = ReplyCode.first(in: text)
        let hits = Phrases.scan(text)
        let code = EnhancedStatusCode.first(in: text)
            ?? BounceClassifier.derivedStatus(basic: basic, hits: hits, permanent: !delayed)
        var entry = ReportRecipient(address: address, action: delayed ? .delayed : .failed, status: code?.description, diagnostic: diagnostic)
        DeliveryStatusReader.classify(&entry, basic: basic, code: code, hits: hits)
        return entry
    }

    /// For a single-recipient bounce whose layout gave no reason: the first line before the copy
    /// with an SMTP code, else the first that names a cause in words.
    static func messageDiagnostic(_ text: ScannedText, cut: Int) -> String? {
        for i in 0..<min(cut, text.lines.count) {
            let line = text.lines[i]
            if ReplyCode.first(in: text.bytes, range: line) != nil || EnhancedStatusCode.first(in: text.bytes, range: line) != nil {
                return text.string(i).nonEmpty
            }
        }
        let causes: PhraseHits = [.mailboxUnknown, .domainUnknown, .mailboxFull, .mailboxDisabled, .messageTooLarge, .recipientRejected]
        for i in 0..<min(cut, text.lines.count) where !Phrases.scan(text.lower, range: text.lines[i]).isDisjoint(with: causes) {
            return text.string(i).nonEmpty
        }
        return nil
    }

    // MARK: - Detectors

    struct Detector: Sendable {
        /// Whether it runs even when the message does not otherwise look like a bounce (its
        /// markers are specific enough on their own).
        var always: Bool
        /// Phrases one of which must be in the text (before the copy) for the detector to run;
        /// nil for one that always runs.
        var gate: [[UInt8]]?
        var read: @Sendable (ScannedText, Int, MailMessage) -> Found?
    }

    /// One bit per detector, by position in ``detectors``.
    struct DetectorSet: OptionSet, Sendable {
        let rawValue: UInt64
    }

    static let detectors: [Detector] = [
        Detector(always: true, gate: dsnFieldStarts, read: embeddedDeliveryStatus),
        Detector(always: true, gate: qmailMarkers + yahooMarkers, read: qmail),
        Detector(always: true, gate: postfixMarkers, read: postfix),
        Detector(always: true, gate: courierMarkers, read: courier),
        Detector(always: true, gate: eximMarkers, read: exim),
        Detector(always: true, gate: sendmailSections, read: sendmail),
        Detector(always: true, gate: mdaemonMarkers, read: mdaemon),
        Detector(always: false, gate: gmailListMarkers + gmailSentenceMarkers, read: gmail),
        Detector(always: false, gate: exchangeReachedMarkers + exchangeFailedMarkers + windowsListMarkers + exchangeSentenceMarkers, read: exchange),
        Detector(always: false, gate: dominoMarkers, read: domino),
        Detector(always: false, gate: groupwiseMarkers, read: groupwise),
        Detector(always: false, gate: nil, read: generic),
    ]

    /// Every detector's gate in one index: one pass over the text says which may apply.
    static let detectorIndex = PhraseIndex<DetectorSet>(detectors.enumerated().compactMap { index, detector in
        detector.gate.map { (DetectorSet(rawValue: 1 << UInt64(index)), $0.map { String(decoding: $0, as: UTF8.self) }) }
    })

    // MARK: DSN fields pasted into text

    static let dsnFieldStarts = phrases(["reporting-mta:", "final-recipient:", "original-recipient:"])

    /// Some gateways forward a DSN flattened into text: its fields, one per line.
    static func embeddedDeliveryStatus(_ text: ScannedText, _ cut: Int, _ message: MailMessage) -> Found? {
        var start: Int? = nil
        var hasRecipient = false
        for i in 0..<min(cut, text.lines.count) {
            let line = text.lines[i]
            for phrase in dsnFieldStarts where Bytes.find(phrase, in: text.lower, from: line.lowerBound, end: line.upperBound) == line.lowerBound {
                if start == nil { start = i }
                if phrase != dsnFieldStarts[0] { hasRecipient = true }
            }
        }
        guard let start, hasRecipient else { return nil }
        let end = cut < text.lines.count ? text.lines[cut].lowerBound : text.bytes.count
        let status = DeliveryStatusReader.read(Array(text.bytes[text.lines[start].lowerBound..<end]), maxRecipients: ReportLimits.defaultMaxRecipients)
        guard !status.recipients.isEmpty else { return nil }
        return Found(format: "rfc3464-text", candidates: [], status: status)
    }

    // MARK: `<address>:` paragraphs (qmail, Yahoo, Postfix, Courier)

    /// Paragraphs that start with `<address>:` (or `<address> (expanded from <alias>):`), the
    /// reason on the rest of the line and the lines that follow up to an empty one.
    static func addressParagraphs(_ text: ScannedText, from: Int, to end: Int) -> [Candidate] {
        var out: [Candidate] = []
        var i = from
        while i < end {
            guard let (address, restStart) = paragraphStart(text, i) else {
                i += 1
                continue
            }
            var parts: [String] = []
            let line = text.lines[i]
            if restStart < line.upperBound { parts.append(text.string(restStart..<line.upperBound)) }
            var j = i + 1
            while j < end, !text.isBlank(j), paragraphStart(text, j) == nil {
                parts.append(text.string(j))
                j += 1
            }
            out.append(Candidate(address: address, diagnostic: parts.joined(separator: " ").nonEmpty))
            i = j
        }
        return out
    }

    private static func paragraphStart(_ text: ScannedText, _ index: Int) -> (String, Int)? {
        let line = text.lines[index]
        var i = line.lowerBound
        while i < line.upperBound, i - line.lowerBound < 4, Bytes.isWSP(text.bytes[i]) { i += 1 }
        guard i < line.upperBound, text.bytes[i] == UInt8(ascii: "<") else { return nil }
        guard let close = text.bytes[i..<line.upperBound].firstIndex(of: UInt8(ascii: ">")) else { return nil }
        let inner = AddressScanner.addresses(in: text.bytes, range: (i + 1)..<close)
        guard let address = inner.first else { return nil }
        var k = close + 1
        // `(expanded from <alias>)`
        while k < line.upperBound, Bytes.isWSP(text.bytes[k]) { k += 1 }
        if k < line.upperBound, text.bytes[k] == UInt8(ascii: "(") {
            guard let closeParen = text.bytes[k..<line.upperBound].firstIndex(of: UInt8(ascii: ")")) else { return nil }
            k = closeParen + 1
        }
        guard k < line.upperBound, text.bytes[k] == UInt8(ascii: ":") else { return nil }
        return (address, k + 1)
    }

    static let qmailMarkers = phrases([
        "qmail-send program", "i'm afraid i wasn't able to deliver your message", "this is a permanent error; i've given up",
    ])
    static let yahooMarkers = phrases(["sorry, we were unable to deliver your message to the following address"])

    static func qmail(_ text: ScannedText, _ cut: Int, _ message: MailMessage) -> Found? {
        let yahoo = text.lineIndex(containing: yahooMarkers, end: cut)
        guard let marker = yahoo ?? text.lineIndex(containing: qmailMarkers, end: cut) else { return nil }
        return Found(format: yahoo != nil ? "yahoo" : "qmail", candidates: addressParagraphs(text, from: marker, to: cut))
    }

    static let postfixMarkers = phrases(["this is the mail system at host", "this is the postfix program at host"])

    static func postfix(_ text: ScannedText, _ cut: Int, _ message: MailMessage) -> Found? {
        guard let marker = text.lineIndex(containing: postfixMarkers, end: cut) else { return nil }
        return Found(format: "postfix", candidates: addressParagraphs(text, from: marker, to: cut))
    }

    static let courierMarkers = phrases(["courier mail server"])

    static func courier(_ text: ScannedText, _ cut: Int, _ message: MailMessage) -> Found? {
        guard let marker = text.lineIndex(containing: courierMarkers, end: cut) else { return nil }
        return Found(format: "courier", candidates: addressParagraphs(text, from: marker, to: cut))
    }

    // MARK: Exim

    static let eximMarkers = phrases(["this message was created automatically by mail delivery software"])
    static let eximSections = phrases([
        "address(es) failed:", "addresses failed:", "address failed:", "has not yet been delivered is:",
        "have not yet been delivered are:", "delivery to the following address", "could not be delivered to:",
    ])

    /// After "The following address(es) failed:": each address on a line of its own (slightly
    /// indented), the reason on the more indented lines under it.
    static func exim(_ text: ScannedText, _ cut: Int, _ message: MailMessage) -> Found? {
        guard let marker = text.lineIndex(containing: eximMarkers, end: cut),
              let section = text.lineIndex(containing: eximSections, from: marker, end: cut) else { return nil }
        return Found(format: "exim", candidates: indentedEntries(text, from: section + 1, to: cut))
    }

    /// Entries in a list where each entry line holds an address and the lines under it, more
    /// indented, say why. Ends at a line that is neither, or at an unindented line after an entry.
    static func indentedEntries(_ text: ScannedText, from: Int, to end: Int) -> [Candidate] {
        var out: [Candidate] = []
        var i = from
        var entryIndent: Int? = nil
        while i < end {
            if text.isBlank(i) {
                i += 1
                continue
            }
            let indent = text.indent(i)
            let addresses = text.addresses(i)
            if let base = entryIndent, indent > base, !out.isEmpty {
                let reason = text.string(i)
                let last = out.count - 1
                out[last].diagnostic = [out[last].diagnostic, reason].compactMap { $0 }.joined(separator: " ")
                i += 1
                continue
            }
            guard let address = addresses.first, entryIndent == nil || indent <= (entryIndent ?? 0) else { break }
            entryIndent = entryIndent ?? indent
            // `address: reason` or `address (reason)` on the same line.
            let line = text.lines[i]
            var rest: String? = nil
            if let at = Bytes.find(Array(address.utf8), in: text.bytes, from: line.lowerBound, end: line.upperBound) {
                let after = at + address.utf8.count
                let tail = text.string(after..<line.upperBound)
                let cleaned = tail.drop { $0 == ">" || $0 == ":" || $0 == " " || $0 == "'" || $0 == "\"" }
                rest = String(cleaned).nonEmpty
            }
            out.append(Candidate(address: address, diagnostic: rest))
            i += 1
        }
        return out
    }

    // MARK: Sendmail

    static let sendmailSections = phrases([
        "----- the following addresses had permanent fatal errors -----", "the following addresses had permanent fatal errors",
        "the following addresses had transient non-fatal errors", "the following addresses had delivery problems",
        "----- the following addresses had",
    ])
    static let transcriptMarkers = phrases(["transcript of session follows"])
    /// Sendmail's `<address>... User unknown` in a transcript.
    static let ellipsis = Array("...".utf8)

    /// The addresses under "The following addresses had permanent fatal errors", with their
    /// `(reason: …)` lines or, failing those, the transcript line that names them.
    static func sendmail(_ text: ScannedText, _ cut: Int, _ message: MailMessage) -> Found? {
        guard let section = text.lineIndex(containing: sendmailSections, end: cut) else { return nil }
        var out: [Candidate] = []
        var i = section + 1
        while i < cut, text.isBlank(i) { i += 1 }
        while i < cut, !text.isBlank(i) {
            let trimmed = text.string(i)
            if trimmed.hasPrefix("("), !out.isEmpty {
                var reason = Substring(trimmed.dropFirst())
                if reason.asciiLowercasedPrefix("reason:") { reason = reason.dropFirst(7) }
                if reason.hasSuffix(")") { reason = reason.dropLast() }
                let last = out.count - 1
                out[last].diagnostic = [out[last].diagnostic, String(reason).trimmedMailWhitespace()].compactMap { $0 }.joined(separator: " ")
            } else if let address = text.addresses(i).first {
                out.append(Candidate(address: address, diagnostic: nil))
            }
            i += 1
        }
        if let transcript = text.lineIndex(containing: transcriptMarkers, end: cut) {
            // One pass over the transcript: the first line that names a waiting address with a
            // reply code (or sendmail's `...`) is its reason.
            var waiting: [String: [Int]] = [:]
            for index in out.indices where out[index].diagnostic == nil {
                waiting[out[index].address.asciiLowercased(), default: []].append(index)
            }
            var j = transcript + 1
            while j < cut, !waiting.isEmpty {
                let line = text.lines[j]
                if ReplyCode.first(in: text.bytes, range: line) != nil
                    || Bytes.contains(ellipsis, in: text.bytes, from: line.lowerBound, end: line.upperBound) {
                    for address in text.addresses(j) {
                        guard let indices = waiting.removeValue(forKey: address.asciiLowercased()) else { continue }
                        // `<<< 550 …` and `>>> RCPT …` mark who said what in the transcript.
                        var said = text.string(j)
                        if said.hasPrefix("<<< ") || said.hasPrefix(">>> ") { said = String(said.dropFirst(4)) }
                        for index in indices { out[index].diagnostic = said }
                    }
                }
                j += 1
            }
        }
        return Found(format: "sendmail", candidates: out)
    }

    // MARK: SMTP transcripts (MDaemon, and the generic fallback)

    static let mdaemonMarkers = phrases(["mdaemon", "permanent fatal delivery errors", "temporary delivery errors"])
    static let rcptTo = Array("rcpt to:".utf8)

    static func mdaemon(_ text: ScannedText, _ cut: Int, _ message: MailMessage) -> Found? {
        guard text.lineIndex(containing: mdaemonMarkers, end: cut) != nil else { return nil }
        return Found(format: "mdaemon", candidates: transcript(text, to: cut))
    }

    /// `RCPT TO:<address>` lines answered with a 4xx or 5xx reply within the next lines.
    static func transcript(_ text: ScannedText, to end: Int) -> [Candidate] {
        var out: [Candidate] = []
        for i in 0..<min(end, text.lines.count) {
            guard let rcpt = text.end(of: rcptTo, inLine: i), let address = text.addresses(i, from: rcpt).first else { continue }
            for j in (i + 1)..<min(end, i + 4) {
                let line = text.lines[j]
                if text.lineContains(j, [rcptTo]) { break }
                guard let code = ReplyCode.first(in: text.bytes, range: line) else { continue }
                let digits = Array(String(code).utf8)
                let at = Bytes.find(digits, in: text.bytes, from: line.lowerBound, end: line.upperBound) ?? line.lowerBound
                out.append(Candidate(address: address, diagnostic: text.string(at..<line.upperBound)))
                break
            }
        }
        return out
    }

    // MARK: Gmail

    static let gmailListMarkers = phrases([
        "delivery to the following recipient failed permanently", "delivery to the following recipients failed permanently",
        "delivery to the following recipient has been delayed", "delivery to the following recipients have been delayed",
        "delivery to the following recipients has been delayed",
    ])
    static let gmailSentenceMarkers = phrases([
        "your message wasn't delivered to", "there was a temporary problem delivering your message to",
        "your message has not been delivered to",
    ])
    /// Where Gmail states the reason, the most specific first.
    static let gmailReasonMarkers = [
        "the error that the other server returned was:", "the response from the remote server was:", "the response was:",
        "technical details of permanent failure:", "technical details of temporary failure:",
    ].map { [Array($0.utf8)] }

    static func gmail(_ text: ScannedText, _ cut: Int, _ message: MailMessage) -> Found? {
        var addresses: [String] = []
        if let list = text.lineIndex(containing: gmailListMarkers, end: cut) {
            addresses = addressList(text, from: list + 1, to: cut)
        } else if let sentence = text.lineIndex(containing: gmailSentenceMarkers, end: cut) {
            addresses = Array(text.addresses(sentence).prefix(1))
        } else {
            return nil
        }
        let reason = gmailReasonMarkers.lazy.compactMap { paragraph(text, after: $0, to: cut) }.first
        return Found(format: "gmail", candidates: addresses.map { Candidate(address: $0, diagnostic: reason) })
    }

    /// The addresses on the lines from `from` up to the first empty line after one was found.
    static func addressList(_ text: ScannedText, from: Int, to end: Int, maxLines: Int = 50) -> [String] {
        var out: [String] = []
        var i = from
        while i < end, i < from + maxLines {
            if text.isBlank(i) {
                if !out.isEmpty { break }
            } else {
                out += text.addresses(i).prefix(1)
            }
            i += 1
        }
        return out
    }

    /// The non-empty lines after the first line that has a marker (and the rest of that line),
    /// up to an empty line.
    static func paragraph(_ text: ScannedText, after markers: [[UInt8]], to end: Int) -> String? {
        guard let index = text.lineIndex(containing: markers, end: end) else { return nil }
        var parts: [String] = []
        for marker in markers {
            if let after = text.end(of: marker, inLine: index) {
                parts.append(text.string(after..<text.lines[index].upperBound))
                break
            }
        }
        var i = index + 1
        while i < end, text.isBlank(i), parts.allSatisfy(\.isEmpty), i < index + 3 { i += 1 }
        while i < end, !text.isBlank(i) {
            parts.append(text.string(i))
            i += 1
        }
        return parts.filter { !$0.isEmpty }.joined(separator: " ").nonEmpty
    }

    // MARK: Exchange and Office 365

    static let exchangeReachedMarkers = phrases([
        "the following recipient(s) cannot be reached:", "the following recipient(s) could not be reached:",
        "the following recipients cannot be reached:", "the following recipient cannot be reached:",
        "could not be reached:",
    ])
    static let exchangeFailedMarkers = phrases(["delivery has failed to these recipients or groups:"])
    static let exchangeSentenceMarkers = phrases(["couldn't be delivered", "could not be delivered to"])
    static let exchangeAdminMarkers = phrases(["diagnostic information for administrators"])
    static let remoteServerReturned = phrases(["remote server returned", "remote server said"])
    static let windowsListMarkers = phrases([
        "delivery to the following recipients failed.", "delivery to the following recipient failed.",
        "delivery to the following recipients failed:", "delivery to the following recipients has been delayed.",
    ])

    static func exchange(_ text: ScannedText, _ cut: Int, _ message: MailMessage) -> Found? {
        let admin = text.lineIndex(containing: exchangeAdminMarkers, end: cut) ?? cut
        var candidates: [Candidate] = []
        if let marker = text.lineIndex(containing: exchangeReachedMarkers, end: cut) {
            // Exchange 2003/2007: indented entries; the address may only be in the reason.
            candidates = exchangeEntries(text, from: marker + 1, to: cut)
        } else if let marker = text.lineIndex(containing: exchangeFailedMarkers, end: cut) {
            // Office 365: an address line, then a sentence for people.
            var i = marker + 1
            while i < admin {
                if let address = text.addresses(i).first {
                    var j = i + 1
                    while j < admin, text.isBlank(j) { j += 1 }
                    let sentence = j < admin && text.addresses(j).isEmpty ? text.string(j).nonEmpty : nil
                    candidates.append(Candidate(address: address, diagnostic: sentence))
                    i = j
                } else {
                    i += 1
                }
            }
        } else if let marker = text.lineIndex(containing: windowsListMarkers, end: cut) {
            candidates = addressList(text, from: marker + 1, to: cut).map { Candidate(address: $0, diagnostic: nil) }
        } else if let marker = text.lineIndex(containing: exchangeSentenceMarkers, end: cut), let address = text.addresses(marker).first {
            // "Your message to a@example.com couldn't be delivered."
            var j = marker + 1
            while j < admin, text.isBlank(j) { j += 1 }
            let sentence = j < admin && text.addresses(j).isEmpty ? text.string(j).nonEmpty : nil
            candidates = [Candidate(address: address, diagnostic: sentence)]
        } else {
            return nil
        }
        // The administrators' section gives the remote server's reply under each address.
        if admin < cut {
            var replies: [String: String] = [:]
            var current: String? = nil
            for j in admin..<cut {
                if text.lineContains(j, remoteServerReturned) {
                    if let address = current ?? text.addresses(j).first?.asciiLowercased(), replies[address] == nil {
                        replies[address] = remoteReply(text.string(j))
                    }
                } else if let address = text.addresses(j).first {
                    current = address.asciiLowercased()
                }
            }
            for index in candidates.indices {
                if let reply = replies[candidates[index].address.asciiLowercased()] { candidates[index].diagnostic = reply }
            }
        }
        if candidates.count == 1, admin == cut, let line = text.lineIndex(containing: remoteServerReturned, end: cut) {
            candidates[0].diagnostic = remoteReply(text.string(line))
        }
        return Found(format: "exchange", candidates: candidates)
    }

    /// `Remote Server returned '550 5.1.1 …'` → `550 5.1.1 …`.
    static func remoteReply(_ line: String) -> String {
        guard let quote = line.firstIndex(of: "'") else { return line }
        var reply = String(line[line.index(after: quote)...])
        if reply.hasSuffix("'") { reply.removeLast() }
        return reply
    }

    /// Exchange's indented list: an entry line (`'a@example.com' on 3/4/2026 10:00 AM`, or a display
    /// name), the reason more indented under it, `<host #5.1.1 smtp;550 …>` last.
    static func exchangeEntries(_ text: ScannedText, from: Int, to end: Int) -> [Candidate] {
        var out: [Candidate] = []
        var entryIndent: Int? = nil
        var pending: (address: String?, reasons: [String])? = nil
        func flush() {
            guard let p = pending else { return }
            let reason = p.reasons.joined(separator: " ")
            let address = p.address ?? AddressScanner.addresses(in: Array(reason.utf8), range: 0..<reason.utf8.count).first
            if let address { out.append(Candidate(address: address, diagnostic: reason.nonEmpty)) }
            pending = nil
        }
        var i = from
        while i < end {
            if text.isBlank(i) {
                i += 1
                continue
            }
            let indent = text.indent(i)
            if let base = entryIndent, indent > base {
                pending?.reasons.append(text.string(i))
            } else if entryIndent == nil || indent == entryIndent {
                if entryIndent == nil, indent == 0, !out.isEmpty || pending != nil { break }
                flush()
                entryIndent = indent
                pending = (text.addresses(i).first, [])
            } else {
                break
            }
            i += 1
        }
        flush()
        return out
    }

    // MARK: Lotus Notes / Domino

    static let dominoMarkers = phrases(["was not delivered to:"])
    static let dominoReason = phrases(["because:"])

    static func domino(_ text: ScannedText, _ cut: Int, _ message: MailMessage) -> Found? {
        guard let marker = text.lineIndex(containing: dominoMarkers, end: cut) else { return nil }
        var addresses: [String] = []
        var i = marker + 1
        while i < cut, !text.lineContains(i, dominoReason) {
            if text.isBlank(i), !addresses.isEmpty { break }
            addresses += text.addresses(i).prefix(1)
            i += 1
        }
        let reason = paragraph(text, after: dominoReason, to: cut)
        return Found(format: "domino", candidates: addresses.map { Candidate(address: $0, diagnostic: reason) })
    }

    // MARK: Novell GroupWise

    static let groupwiseMarkers = phrases(["undeliverable to the following:"])

    /// `a@example.com (user not found)` lines under "…was undeliverable to the following:".
    static func groupwise(_ text: ScannedText, _ cut: Int, _ message: MailMessage) -> Found? {
        guard let marker = text.lineIndex(containing: groupwiseMarkers, end: cut) else { return nil }
        var out: [Candidate] = []
        var i = marker + 1
        while i < cut {
            if text.isBlank(i) {
                if !out.isEmpty { break }
                i += 1
                continue
            }
            guard let address = text.addresses(i).first else { break }
            var reason: String? = nil
            let line = text.lines[i]
            if let open = text.bytes[line].firstIndex(of: UInt8(ascii: "(")) {
                let close = text.bytes[open..<line.upperBound].lastIndex(of: UInt8(ascii: ")")) ?? line.upperBound
                reason = text.string((open + 1)..<close).nonEmpty
            }
            out.append(Candidate(address: address, diagnostic: reason))
            i += 1
        }
        return Found(format: "groupwise", candidates: out)
    }

    // MARK: Generic

    static let listMarkers = phrases([
        "following recipient", "following address", "following destination", "could not be delivered to",
        "undeliverable to", "failed recipient", "unable to deliver", "delivery failed for", "delivery to the following",
        "not delivered to", "following user", "permanent error for",
    ])

    /// Any bounce-looking message: `<address>:` paragraphs, an SMTP transcript, or the addresses
    /// that follow a "the following recipients" phrase.
    static func generic(_ text: ScannedText, _ cut: Int, _ message: MailMessage) -> Found? {
        let paragraphs = addressParagraphs(text, from: 0, to: cut)
        if !paragraphs.isEmpty { return Found(format: "text", candidates: paragraphs) }
        let replies = transcript(text, to: cut)
        if !replies.isEmpty { return Found(format: "text", candidates: replies) }
        guard let marker = text.lineIndex(containing: listMarkers, end: cut) else { return nil }
        var addresses: [String] = []
        for phrase in listMarkers {
            if let after = text.end(of: phrase, inLine: marker) {
                addresses = Array(text.addresses(marker, from: after).prefix(1))
                break
            }
        }
        if addresses.isEmpty { addresses = addressList(text, from: marker + 1, to: cut, maxLines: 20) }
        return Found(format: "text", candidates: addresses.map { Candidate(address: $0, diagnostic: nil) })
    }
}

extension Substring {
    /// Whether this starts with `lowercasePrefix`, ignoring ASCII case.
    func asciiLowercasedPrefix(_ lowercasePrefix: String) -> Bool {
        String(prefix(lowercasePrefix.count)).asciiLowercased() == lowercasePrefix
    }
}
