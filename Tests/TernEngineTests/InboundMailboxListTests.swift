import Testing
@testable import TernEngine

@Suite struct InboundMailboxListTests {
    typealias Mailbox = InboundPayload.Mailbox

    @Test(arguments: [
        ("ann@example.org", [Mailbox(address: "ann@example.org", name: nil)]),
        ("Ann Example <ann@example.org>", [Mailbox(address: "ann@example.org", name: "Ann Example")]),
        ("\"Example, Ann\" <ann@example.org>", [Mailbox(address: "ann@example.org", name: "Example, Ann")]),
        ("\"Ann \\\"the\\\" Example\" <ann@example.org>", [Mailbox(address: "ann@example.org", name: "Ann \"the\" Example")]),
        ("ann@example.org (Ann Example)", [Mailbox(address: "ann@example.org", name: "Ann Example")]),
        ("Ann <ann@example.org> (work), bob@example.org",
         [Mailbox(address: "ann@example.org", name: "Ann"), Mailbox(address: "bob@example.org", name: nil)]),
        ("=?UTF-8?Q?J=C3=B6rg?= =?UTF-8?Q?_M=C3=BCller?= <jm@example.de>", [Mailbox(address: "jm@example.de", name: "Jörg Müller")]),
        ("\"=?UTF-8?B?R3LDtsOfZQ==?=\" <g@example.de>", [Mailbox(address: "g@example.de", name: "Größe")]),
        ("Friends: a@example.org, B <b@example.org>;, c@example.org",
         [Mailbox(address: "a@example.org", name: nil), Mailbox(address: "b@example.org", name: "B"),
          Mailbox(address: "c@example.org", name: nil)]),
        ("undisclosed-recipients:;", []),
        ("<@relay.example:ann@example.org>", [Mailbox(address: "ann@example.org", name: nil)]),
        ("\"john doe\"@example.org", [Mailbox(address: "\"john doe\"@example.org", name: nil)]),
        ("x <user@[IPv6:2001:db8::1]>", [Mailbox(address: "user@[IPv6:2001:db8::1]", name: "x")]),
        ("user@[IPv6:2001:db8::1]", [Mailbox(address: "user@[IPv6:2001:db8::1]", name: nil)]),
        ("root", [Mailbox(address: "root", name: nil)]),
        ("just some words", []),
        ("", []),
        (",,,", []),
        // Unterminated comment and angle: read to the end, never a trap.
        ("ann@example.org (Ann", [Mailbox(address: "ann@example.org", name: "Ann")]),
        ("Ann <ann@example.org", [Mailbox(address: "ann@example.org", name: "Ann")]),
        ("Grüße <g@exämple.de>", [Mailbox(address: "g@exämple.de", name: "Grüße")]),
    ] as [(String, [Mailbox])])
    func mailboxes(value: String, expected: [Mailbox]) {
        #expect(MailboxList.mailboxes(in: value) == expected)
    }
}
