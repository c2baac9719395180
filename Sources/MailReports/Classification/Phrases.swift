/// Which causes a diagnostic's wording names: one bit per phrase table of ``Phrases``.
struct PhraseHits: OptionSet, Sendable, Hashable {
    let rawValue: UInt16
    static let mailboxUnknown = PhraseHits(rawValue: 1 << 0)
    static let domainUnknown = PhraseHits(rawValue: 1 << 1)
    static let mailboxDisabled = PhraseHits(rawValue: 1 << 2)
    static let mailboxFull = PhraseHits(rawValue: 1 << 3)
    static let messageTooLarge = PhraseHits(rawValue: 1 << 4)
    static let policy = PhraseHits(rawValue: 1 << 5)
    static let recipientRejected = PhraseHits(rawValue: 1 << 6)
    static let sender = PhraseHits(rawValue: 1 << 7)
    static let transient = PhraseHits(rawValue: 1 << 8)
    /// Bounce text that says delivery goes on (``PlainBounceReader/delayBodyPhrases``).
    static let delaySaid = PhraseHits(rawValue: 1 << 9)
    /// Bounce text that says delivery stopped for good (``PlainBounceReader/permanentBodyPhrases``).
    static let permanentSaid = PhraseHits(rawValue: 1 << 10)
}

/// Every phrase of every table, bucketed by first byte, so that one pass over a text finds
/// which tables it matches (a diagnostic is read against some 250 phrases).
struct PhraseIndex<Tables: OptionSet & Sendable>: Sendable where Tables.Element == Tables {
    private let buckets: [[(phrase: [UInt8], table: Tables)]]

    init(_ tables: [(Tables, [String])]) {
        var buckets = [[(phrase: [UInt8], table: Tables)]](repeating: [], count: 256)
        for (table, phrases) in tables {
            for phrase in phrases {
                let bytes = Array(phrase.utf8)
                guard let first = bytes.first else { continue }
                buckets[Int(first)].append((bytes, table))
            }
        }
        self.buckets = buckets
    }

    /// The tables with a phrase in `lowercased[range]`.
    func scan(_ lowercased: [UInt8], range: Range<Int>? = nil) -> Tables {
        let range = range ?? 0..<lowercased.count
        var hits: Tables = []
        lowercased.withUnsafeBufferPointer { text in
            var i = range.lowerBound
            while i < range.upperBound {
                for entry in buckets[Int(text[i])] where !hits.contains(entry.table) {
                    let phrase = entry.phrase
                    guard range.upperBound - i >= phrase.count else { continue }
                    var j = 1
                    while j < phrase.count, text[i + j] == phrase[j] { j += 1 }
                    if j == phrase.count { hits.insert(entry.table) }
                }
                i += 1
            }
        }
        return hits
    }
}

/// Wording that mail systems use in diagnostics, lowercase, matched as substrings of the
/// ASCII-lowercased text. Each table names one cause; ``BounceClassifier`` decides the order.
enum Phrases {
    /// The mailbox does not exist (RFC 3463 X.1.1).
    static let mailboxUnknown: [String] = [
        "user unknown", "unknown user", "no such user", "no such mailbox", "no such recipient", "no such account",
        "unknown recipient", "recipient unknown", "recipient not found", "recipient does not exist",
        "user does not exist", "mailbox does not exist", "address does not exist", "account does not exist",
        "does not exist", "doesn't exist", "mailbox not found", "mailbox unavailable", "address not found",
        "user not found", "invalid recipient", "invalid mailbox", "bad destination mailbox", "no mailbox here",
        "no mailbox by that name", "unknown or illegal alias", "unknown local part", "unknown address",
        "user doesn't have a", "user does not have a", "couldn't be found", "could not be found",
        "not listed in domino directory", "not listed in public name & address book", "recipnotfound",
        "recipientnotfound", "not a known user", "undeliverable address", "addressee unknown",
        "no longer valid", "is not a valid mailbox", "name is not recognized", "no such person",
    ]

    /// The domain does not exist or has no mail route (X.1.2, X.1.10 null MX, X.4.4).
    static let domainUnknown: [String] = [
        "host not found", "domain not found", "no such domain", "domain does not exist", "domain doesn't exist",
        "host or domain name not found", "unrouteable address", "unroutable address", "nxdomain", "no mx record",
        "null mx", "domain does not accept mail", "bad destination system address", "domain name not found",
        "unknown domain", "host unknown", "domain is not valid", "invalid domain",
    ]

    /// The mailbox exists but is disabled, closed or gone for good (X.2.1).
    static let mailboxDisabled: [String] = [
        "mailbox disabled", "account disabled", "mailbox is disabled", "account is disabled",
        "account has been disabled", "mailbox has been disabled", "account is inactive", "mailbox is inactive",
        "inactive account", "inactive mailbox", "account has been deactivated", "account expired",
        "account has expired", "no longer active", "account closed", "account has been closed",
        "mailbox is closed", "mailbox has been closed", "no longer accepting mail",
    ]

    /// The mailbox is over its quota (X.2.2).
    static let mailboxFull: [String] = [
        "mailbox full", "mailbox is full", "quota", "overquota", "exceeded storage", "storage allocation",
        "mailbox size limit", "mailbox exceeds", "full mailbox", "mailbox has exceeded", "inbox is full",
        "out of storage", "user is over", "insufficient storage", "mailbox would exceed", "exceeded the storage",
    ]

    /// The message is larger than the receiver takes (X.2.3, X.3.4).
    static let messageTooLarge: [String] = [
        "message too large", "message too big", "message is too large", "message is too big",
        "message size exceeds", "exceeds the maximum size", "maximum message size", "message length exceeds",
        "size limit", "too large", "message exceeds", "exceeds size limit",
    ]

    /// Rejections for reputation, content, authentication or policy: about this sender or message,
    /// not the address (RFC 3463 X.7.x used as it is in practice).
    static let policy: [String] = [
        "blocked", "block list", "blocklist", "blacklist", "black list", "denylist", "spam", "listed at",
        "listed on", "listed by", "is listed", "are listed", "dnsbl", "rbl ", "rbl:", "(rbl", "spamhaus",
        "barracuda", "spamcop", "reputation", "policy", "policies", "content rejected", "virus", "malware",
        "phish", "dmarc", "spf ", "spf:", "spf=", "dkim", "not accepted from", "banned", "unsolicited", "bulk mail",
        "junk", "suspicious", "client host rejected", "helo command rejected", "too many connections",
        "rate limit", "ip address", "your ip", "sending ip", "sending mta", "message refused", "rejected by filter",
        "filtered", "high probability", "authentication required", "unauthenticated",
    ]

    /// The receiver refuses this recipient: not relaying for it, or the recipient is not allowed
    /// to receive (X.7.1 used for addresses; X.4.1 in Office 365 directory-based edge blocking).
    static let recipientRejected: [String] = [
        "relay access denied", "relaying denied", "relay denied", "relay not permitted", "not permitted to relay",
        "relaying not allowed", "relay not allowed", "unable to relay", "we do not relay", "not allowed to relay",
        "relaying to", "not authorized to receive", "not authorised to receive", "recipient rejected",
        "recipient address rejected", "rcpt rejected", "not in my list of allowed rcpthosts",
        "isn't in my list of allowed rcpthosts",
    ]

    /// The failure concerns the envelope sender (Tern's return path), not the recipient (X.1.7, X.1.8).
    static let sender: [String] = [
        "sender address rejected", "sender rejected", "sender verify failed", "sender domain", "sender address domain",
        "invalid sender", "unverified sender", "in reply to mail from command", "after mail from",
        "sender is not allowed", "bad sender", "return path", "return-path",
    ]

    /// A permanent code whose wording says the condition will pass (rate limiting, "try again").
    static let transient: [String] = [
        "try again later", "temporarily", "temporary", "too quickly", "too fast", "at a rate", "rate limit",
    ]

    static let index = PhraseIndex<PhraseHits>([
        (.mailboxUnknown, mailboxUnknown), (.domainUnknown, domainUnknown), (.mailboxDisabled, mailboxDisabled),
        (.mailboxFull, mailboxFull), (.messageTooLarge, messageTooLarge), (.policy, policy),
        (.recipientRejected, recipientRejected), (.sender, sender), (.transient, transient),
    ])

    /// The tables whose phrases occur in `lowercased` (or in a range of it).
    static func scan(_ lowercased: [UInt8], range: Range<Int>? = nil) -> PhraseHits {
        index.scan(lowercased, range: range)
    }
}
