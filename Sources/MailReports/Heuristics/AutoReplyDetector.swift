/// Recognises automatic replies (out of office, vacation, autoresponders).
///
/// In order, for a message that does not come from a mail system (Postfix and Exim send their
/// bounces with `Auto-Submitted: auto-replied`, RFC 3834 §5.2 notwithstanding):
/// 1. `Auto-Submitted: auto-replied` (RFC 3834 §5.1, §5.2): format `rfc3834`. `auto-generated`
///    alone is not enough: DSNs and other notifications carry it too (RFC 3834 §5.2, RFC 3464 §3).
/// 2. Autoresponder fields that common software writes: `X-Autoreply`, `X-Autorespond`,
///    `X-Autoresponder`, `X-Auto-Reply`, `X-AutoReply-From`, `X-Mail-Autoreply`, `X-Vacation`,
///    `X-POST-MessageClass: 9; Autoresponder`, `Precedence: auto_reply` (any value but `no`):
///    format `autoreply-header`.
/// 3. A subject that starts like an automatic reply (`Out of Office`, `Automatic reply:`, `Auto:`,
///    `Autoreply`, `Vacation`, and the usual translations) from a sender that is not a mail
///    subject that is not a bounce's: format `autoreply-subject`.
enum AutoReplyDetector {
    static func detect(_ header: ReportHeader, traits: MessageTraits) -> String? {
        guard !traits.fromMailSystem else { return nil }
        for value in header.values("auto-submitted") {
            let token = ReportValue.removingComments(value).trimmedMailWhitespace().asciiLowercased()
            if token.hasPrefix("auto-replied") { return "rfc3834" }
        }
        let flagFields = ["x-autoreply", "x-autorespond", "x-autoresponder", "x-auto-reply", "x-autoreply-from",
                          "x-mail-autoreply", "x-vacation"]
        for name in flagFields {
            if let value = header.value(name), value.trimmedMailWhitespace().asciiLowercased() != "no" { return "autoreply-header" }
        }
        if let value = header.value("x-post-messageclass"), value.asciiLowercased().contains("autoresponder") {
            return "autoreply-header"
        }
        for name in ["precedence", "x-precedence"] {
            if let value = header.value(name)?.trimmedMailWhitespace().asciiLowercased(), value == "auto_reply" || value == "auto-reply" {
                return "autoreply-header"
            }
        }
        guard !traits.bounceSubject, let subject = header.decodedValue("subject") else { return nil }
        return isAutoReplySubject(subject) ? "autoreply-subject" : nil
    }

    /// Subject prefixes of automatic replies, lowercase; leading `[` and whitespace are ignored.
    static let subjectPrefixes: [String] = [
        "out of office", "out of the office", "ooo:", "ooo ", "automatic reply", "auto reply", "auto-reply", "autoreply",
        "auto response", "auto-response", "autoresponse", "automated reply", "automated response", "auto:",
        "vacation", "on vacation", "away from", "i am away", "i'm away", "i am out of", "i'm out of", "abwesenheitsnotiz",
        "automatische antwort", "réponse automatique", "reponse automatique", "absence", "respuesta automática",
        "respuesta automatica", "fuera de la oficina", "risposta automatica", "fuori sede", "automatisch antwoord",
        "afwezig", "resposta automática", "resposta automatica", "automatisk svar", "autosvar", "frånvaro",
        "automaattinen vastaus", "automatyczna odpowiedź", "automatická odpověď", "otomatik yanıt",
        "автоматический ответ", "自动回复", "自動回覆", "自動応答",
    ]

    static func isAutoReplySubject(_ subject: String) -> Bool {
        var text = Substring(subject.trimmedMailWhitespace().lowercased())
        while let first = text.first, first == "[" || first == "(" || first == " " { text = text.dropFirst() }
        return subjectPrefixes.contains { text.hasPrefix($0) }
    }

    /// The original's id from `In-Reply-To` (RFC 3834 §3.1.5), else the last of `References`.
    static func repliedMessageID(_ header: ReportHeader) -> String? {
        if let value = header.value("in-reply-to"), let id = lastID(value, first: true) { return id }
        if let value = header.value("references"), let id = lastID(value, first: false) { return id }
        return nil
    }

    private static func lastID(_ value: String, first: Bool) -> String? {
        var ids: [String] = []
        var rest = Substring(ReportValue.removingComments(value))
        while let open = rest.firstIndex(of: "<") {
            let after = rest.index(after: open)
            guard let close = rest[after...].firstIndex(of: ">") else { break }
            let id = rest[after..<close].trimmedMailWhitespace()
            if !id.isEmpty { ids.append(id) }
            rest = rest[rest.index(after: close)...]
        }
        return first ? ids.first : ids.last
    }
}
