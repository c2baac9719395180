import Testing

@testable import MailMessage

struct EncodedWordTests {
    static let cases: [(String, String)] = [
        ("plain subject", "plain subject"),
        ("=?UTF-8?B?w4lsb2RpZQ==?=", "Élodie"),
        ("=?utf-8?q?caf=C3=A9_cr=C3=A8me?=", "café crème"),
        ("=?ISO-8859-1?Q?Bestellbest=E4tigung?= 7781", "Bestellbestätigung 7781"),
        ("=?iso-8859-1?b?SvxyZ2Vu?=", "Jürgen"),
        ("=?windows-1252?Q?=93quoted=94_=80?=", "\u{201C}quoted\u{201D} €"),
        ("=?us-ascii?Q?plain?=", "plain"),
        ("=?ISO-8859-15?Q?=A4uro?=", "€uro"),
        // Whitespace between adjacent encoded-words is dropped (RFC 2047 §6.2).
        ("=?UTF-8?Q?a?= =?UTF-8?Q?b?=", "ab"),
        ("=?UTF-8?Q?a?=\t  =?UTF-8?Q?b?=", "ab"),
        // ... but kept next to ordinary text.
        ("Re: =?UTF-8?Q?a?= and =?UTF-8?Q?b?=", "Re: a and b"),
        // A multibyte character split across two words.
        ("=?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?=", "éé"),
        ("=?UTF-8?Q?=C3?= =?UTF-8?Q?=A9?=", "é"),
        // RFC 2231 §5 language tag.
        ("=?UTF-8*en?Q?hello?=", "hello"),
        // Unknown charset or malformed words stay as written.
        ("=?x-unknown?Q?abc?=", "=?x-unknown?Q?abc?="),
        ("=?UTF-8?X?abc?=", "=?UTF-8?X?abc?="),
        ("=?UTF-8?Q?unterminated", "=?UTF-8?Q?unterminated"),
        ("a =? b", "a =? b"),
        ("Votre facture =?UTF-8?Q?INV-2026-0042_=E2=80=94_ACME?=", "Votre facture INV-2026-0042 — ACME"),
    ]

    @Test(arguments: cases)
    func decodes(value: String, expected: String) {
        #expect(EncodedWord.decode(value) == expected)
    }

    @Test func headerDecodedValue() {
        let message = MailMessage(Array("Subject: =?UTF-8?Q?Caf=C3=A9?=\r\n =?UTF-8?Q?_ouvert?=\r\n\r\nbody\r\n".utf8))
        #expect(message.header.value("subject") == "=?UTF-8?Q?Caf=C3=A9?= =?UTF-8?Q?_ouvert?=")
        #expect(message.header.decodedValue("Subject") == "Café ouvert")
    }

    static let encodeCases: [String] = [
        "Grüße aus Köln",
        "日本語の件名とても長いテキストがここに続きます、折り返しが必要です。日本語の件名とても長いテキスト",
        "emoji 👩‍👩‍👧‍👦 family and 🇩🇪 flag",
        "  spaces  kept  ",
        "=?utf-8?q?not_a_word?= _under_score_ ?question?",
        String(repeating: "é", count: 200),
        "a",
    ]

    @Test(arguments: encodeCases)
    func encodeRoundTrips(text: String) {
        let words = EncodedWord.encode(text, firstMaxLength: 40)
        #expect(!words.isEmpty)
        for (index, word) in words.enumerated() {
            #expect(word.utf8.count <= (index == 0 ? 40 : EncodedWord.maxWordLength), "\(word)")
            #expect(word.hasPrefix("=?utf-8?"))
            // Only characters RFC 2047 §5(3) allows in a phrase, so the words fit any header.
            #expect(word.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") })
        }
        #expect(EncodedWord.decode(words.joined(separator: " ")) == text)
        #expect(EncodedWord.decode(words.joined(separator: "\r\n ")) == text)
    }

    @Test func encodePicksQForMostlyASCIIAndBOtherwise() {
        #expect(EncodedWord.encode("Ünited Shop Company") == ["=?utf-8?q?=C3=9Cnited_Shop_Company?="])
        #expect(EncodedWord.encode("Grüße") == ["=?utf-8?b?R3LDvMOfZQ==?="])
        #expect(EncodedWord.encode("日本語") == ["=?utf-8?b?5pel5pys6Kqe?="])
        #expect(EncodedWord.encode("") == [])
    }
}
