/// Why a failure was classed as it was.
public enum BounceReason: String, Sendable, Hashable, CaseIterable {
    /// The mailbox does not exist (X.1.1, X.1.3, X.1.6 moved, "user unknown"…).
    case badMailbox = "bad_mailbox"
    /// The domain does not exist or takes no mail (X.1.2, X.1.10 null MX, "host not found"…).
    case badDomain = "bad_domain"
    /// The mailbox is disabled or closed (X.2.1).
    case mailboxDisabled = "mailbox_disabled"
    /// The receiver refuses this recipient: no relaying for it, not authorised to receive.
    case recipientRejected = "recipient_rejected"
    /// Over quota (X.2.2, "mailbox full").
    case mailboxFull = "mailbox_full"
    /// Too large for the receiver (X.2.3, X.3.4).
    case messageTooLarge = "message_too_large"
    /// Spam, block lists, reputation, authentication, content or other policy (X.7.x).
    case policy
    /// The envelope sender was refused (X.1.7, X.1.8, "sender address rejected").
    case sender
    /// A transient failure (4.x.x).
    case temporary
    /// Anything else, or nothing to go on.
    case other
}

/// The class of one failure and the reason for it.
public struct BounceClassification: Sendable, Hashable {
    public var bounceClass: BounceClass
    public var reason: BounceReason

    public init(bounceClass: BounceClass, reason: BounceReason) {
        self.bounceClass = bounceClass
        self.reason = reason
    }

    /// Whether to stop sending to the address: exactly the hard failures.
    public var suppress: Bool { bounceClass == .hard }
}

/// Classes a delivery failure as hard (the address is bad: stop sending to it) or soft (this
/// message, this moment, this sender or a policy: keep the address), for DSNs, plain-text bounces
/// and, in the engine, synchronous SMTP replies alike.
///
/// The status class is the basic reply code's when there is one (RFC 5321 §4.2.1: it decides
/// retrying), else the enhanced code's (RFC 3463 §2), else permanent: callers classify failures.
/// Then, in order:
///
/// 1. Class 2 (not a failure) and class 4 (RFC 3463 §3.1 persistent transient) are **soft**.
/// 2. X.1.7 and X.1.8 (bad sender address), or sender wording (`Sender address rejected`,
///    `in reply to MAIL FROM command`) without a recipient-mailbox code: **soft** — the fault
///    is Tern's return path, not the recipient.
/// 3. Any other 5.1.x (RFC 3463 §3.2 addressing status: 5.1.1 bad mailbox, 5.1.2 bad domain,
///    5.1.3 bad syntax, 5.1.6 moved, 5.1.10 null MX per RFC 7505 §4.2…): **hard**. This keeps the
///    engine's synchronous rule (`TransportOutcome.bounceClass`: hard only for 5.1.x) except for
///    5.1.7/5.1.8, which are about the sender.
/// 4. 5.2.1 mailbox disabled (§3.3): **hard**, unless the wording says it will pass (rate
///    limiting). 5.2.2 mailbox full, 5.2.3 and 5.3.4 too large: **soft**.
/// 5. Policy wording — blocked, spam, block/black list, listed, reputation, policy, DMARC/SPF/DKIM,
///    virus… — **soft**, whatever the code (5.7.1 included): a block on Tern's sending is no
///    reason to drop the address.
/// 6. Wording that the domain or mailbox does not exist (`host not found`, `user unknown`,
///    `RecipNotFound`, `not listed in Domino Directory`…), that the recipient is refused
///    (`Relay access denied`, `Recipient address rejected`, `not authorized to receive`), or that
///    the mailbox is disabled: **hard** — this is how 5.7.1, 5.4.1 (Office 365) and 5.0.0 report
///    a bad address.
/// 7. Mailbox-full or too-large wording, any other 5.7.x, anything else: **soft**. Without
///    evidence about the address, Tern keeps it.
///
/// A hard failure suppresses the address; a soft one never does (repeated soft failures are the
/// engine's business).
///
/// - SeeAlso: RFC 3463 (enhanced status codes), RFC 5321 §4.2 (reply codes)
public enum BounceClassifier {
    /// Classifies one failure from its basic reply code (`550`), enhanced status code (`5.1.1`)
    /// and diagnostic text. Each may be nil; missing codes are looked for in the diagnostic.
    public static func classify(statusCode: Int?, enhancedCode: String?, diagnostic: String?) -> BounceClassification {
        let text = Bytes.lowercased((diagnostic ?? "").utf8)
        let code = enhancedCode.flatMap(EnhancedStatusCode.init(parsing:)) ?? EnhancedStatusCode.first(in: text)
        let basic = statusCode ?? ReplyCode.first(in: text)
        return classify(basic: basic, code: code, lowercasedText: text)
    }

    static func classify(basic: Int?, code: EnhancedStatusCode?, lowercasedText text: [UInt8]) -> BounceClassification {
        classify(basic: basic, code: code, hits: Phrases.scan(text))
    }

    static func classify(basic: Int?, code: EnhancedStatusCode?, hits: PhraseHits) -> BounceClassification {
        func hard(_ reason: BounceReason) -> BounceClassification { BounceClassification(bounceClass: .hard, reason: reason) }
        func soft(_ reason: BounceReason) -> BounceClassification { BounceClassification(bounceClass: .soft, reason: reason) }

        let statusClass: Int
        if let basic, (200..<600).contains(basic) {
            statusClass = basic / 100
        } else if let code {
            statusClass = code.statusClass
        } else {
            statusClass = 5
        }
        let subject = code?.subject
        let detail = code?.detail

        switch statusClass {
        case 2:
            return soft(.other)
        case 4:
            if (subject == 2 && detail == 2) || hits.contains(.mailboxFull) { return soft(.mailboxFull) }
            if (subject == 3 && detail == 4) || (subject == 2 && detail == 3) { return soft(.messageTooLarge) }
            if subject == 7 || hits.contains(.policy) { return soft(.policy) }
            return soft(.temporary)
        default:
            break
        }

        // Rule 2: the sender.
        if subject == 1, detail == 7 || detail == 8 { return soft(.sender) }
        let recipientMailboxCode = (subject == 1 && detail != 0) || subject == 2
        if !recipientMailboxCode, hits.contains(.sender) { return soft(.sender) }
        // Rule 3: addressing.
        if subject == 1 { return hard(detail == 2 || detail == 10 ? .badDomain : .badMailbox) }
        // Rule 4: mailbox and size.
        if subject == 2 {
            switch detail {
            case 1: return hits.contains(.transient) ? soft(.temporary) : hard(.mailboxDisabled)
            case 2: return soft(.mailboxFull)
            case 3: return soft(.messageTooLarge)
            default: break
            }
        }
        if subject == 3, detail == 4 { return soft(.messageTooLarge) }
        // Rule 5: policy.
        if hits.contains(.policy) { return soft(.policy) }
        // Rule 6: the address, in words.
        if hits.contains(.domainUnknown) { return hard(.badDomain) }
        if hits.contains(.mailboxUnknown) { return hard(.badMailbox) }
        if hits.contains(.recipientRejected) { return hard(.recipientRejected) }
        if hits.contains(.mailboxDisabled) { return hard(.mailboxDisabled) }
        // Rule 7.
        if hits.contains(.mailboxFull) { return soft(.mailboxFull) }
        if hits.contains(.messageTooLarge) { return soft(.messageTooLarge) }
        if subject == 7 { return soft(.policy) }
        return soft(.other)
    }

    /// An enhanced status code for a failure whose report states none: from the wording (in the
    /// order of the rules above), else from the basic reply code (551 → X.1.6, 552 → X.2.2,
    /// 553 → X.1.3, 452 → X.3.1, others X.0.0). The class is the basic code's, else `permanent`'s.
    /// Nil when there is neither a code nor telling wording.
    static func derivedStatus(basic: Int?, lowercasedText text: [UInt8], permanent: Bool) -> EnhancedStatusCode? {
        derivedStatus(basic: basic, hits: Phrases.scan(text), permanent: permanent)
    }

    static func derivedStatus(basic: Int?, hits: PhraseHits, permanent: Bool) -> EnhancedStatusCode? {
        let statusClass = basic.map { $0 / 100 } ?? (permanent ? 5 : 4)
        func code(_ subject: Int, _ detail: Int) -> EnhancedStatusCode {
            EnhancedStatusCode(statusClass: statusClass, subject: subject, detail: detail)
        }
        if hits.contains(.policy) { return code(7, 1) }
        if hits.contains(.domainUnknown) { return code(1, 2) }
        if hits.contains(.mailboxUnknown) { return code(1, 1) }
        if hits.contains(.recipientRejected) { return code(7, 1) }
        if hits.contains(.mailboxDisabled) { return code(2, 1) }
        if hits.contains(.mailboxFull) { return code(2, 2) }
        if hits.contains(.messageTooLarge) { return code(3, 4) }
        switch basic {
        case 551: return code(1, 6)
        case 552: return code(2, 2)
        case 553: return code(1, 3)
        case 452: return code(3, 1)
        case .some: return code(0, 0)
        case nil: return nil
        }
    }
}
