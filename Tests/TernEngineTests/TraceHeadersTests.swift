import Foundation
import MailMessage
import Testing
@testable import TernEngine

@Suite struct TraceHeadersTests {
    let stamper = TraceHeaders(hostname: "mx.tern.test")
    let date = Date(timeIntervalSince1970: 1_795_000_000)

    func received(recipient: String? = "to@example.net") -> TraceHeaders.Received {
        TraceHeaders.Received(
            heloName: "client.example", clientIP: "127.0.0.1", protocolName: "ESMTPSA",
            queueID: "00000000000000aa", singleRecipient: recipient, date: date)
    }

    @Test func addsReceivedMessageIDAndDateWhenMissing() {
        let stamped = stamper.stamp(Array("Subject: hi\r\n\r\nbody\r\n".utf8), received: received())
        let text = String(decoding: stamped.content, as: UTF8.self)
        let expectedDate = TraceHeaders.rfc5322Date(date)
        #expect(text.hasPrefix(
            "Received: from client.example ([127.0.0.1])\r\n\tby mx.tern.test (Tern) with ESMTPSA id 00000000000000aa\r\n\tfor <to@example.net>;\r\n\t\(expectedDate)\r\n"))
        #expect(text.contains("\r\nMessage-ID: <00000000000000aa.1795000000000@mx.tern.test>\r\n"))
        #expect(text.contains("\r\nDate: \(expectedDate)\r\n"))
        #expect(text.hasSuffix("Subject: hi\r\n\r\nbody\r\n"))
        #expect(stamped.messageID == "<00000000000000aa.1795000000000@mx.tern.test>")
    }

    @Test(arguments: [
        ("Message-ID: <abc@x>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nbody\r\n", "<abc@x>"),
        ("message-id:   <abc@x>  \r\nDATE: whenever\r\n\r\nbody\r\n", "<abc@x>"),
        ("Message-Id:\r\n <folded@x>\r\nDate: x\r\n\r\n", "<folded@x>"),
        ("Date: x\r\nMessage-ID: <only-headers@x>\r\n", "<only-headers@x>"),
        ("Message-ID : <blank-before-colon@x>\r\nDate\t: x\r\n\r\n", "<blank-before-colon@x>"),
        ("Message-ID: <first@x>\r\nMessage-ID: <second@x>\r\nDate: x\r\n\r\n", "<first@x>"),
    ])
    func keepsExistingHeaders(message: String, messageID: String) {
        let stamped = stamper.stamp(Array(message.utf8), received: received())
        let text = String(decoding: stamped.content, as: UTF8.self)
        #expect(stamped.messageID == messageID)
        #expect(text.hasSuffix(message))
        let added = String(text.dropLast(message.count))
        #expect(added.hasPrefix("Received: "))
        #expect(!added.contains("Message-ID:"))
        #expect(!added.contains("\r\nDate:"))
    }

    @Test(arguments: [
        "Subject: x\r\n\r\nMessage-ID: <in-body@x>\r\nDate: y\r\n",
        "\r\nMessage-ID: <in-body@x>\r\n",
        "not a header line\r\nMessage-ID: <after-garbage@x>\r\n",
        "X-Message-ID: <lookalike@x>\r\nX-Date: y\r\n\r\n",
        "Message-IDs: <longer@x>\r\nDates: y\r\nDat: z\r\n\r\n",
        "Message ID: <inner-blank@x>\r\nDa te: y\r\n\r\n",
    ])
    func looksOnlyAtTheHeaderSection(message: String) {
        let stamped = stamper.stamp(Array(message.utf8), received: received())
        let text = String(decoding: stamped.content, as: UTF8.self)
        #expect(stamped.messageID.hasPrefix("<00000000000000aa."))
        #expect(text.contains("\r\nDate: "))
    }

    /// The From value (first field, unfolded, trimmed), for the sending domain.
    @Test(arguments: [
        ("From: Shop <News@Shop.Example>\r\nSubject: x\r\n\r\n", "Shop <News@Shop.Example>", "shop.example"),
        ("from:\r\n \"A, B\" <a@b.example>\r\n\r\n", "\"A, B\" <a@b.example>", "b.example"),
        ("From: first@one.example\r\nFrom: second@two.example\r\n\r\n", "first@one.example", "one.example"),
        ("X-From: x@y.example\r\nFromage: z@y.example\r\n\r\nFrom: body@z.example\r\n", nil, nil),
        ("From: undisclosed\r\n\r\n", "undisclosed", nil),
    ] as [(String, String?, String?)])
    func readsFrom(header: String, from: String?, domain: String?) {
        let stamped = stamper.stamp(Array(header.utf8), received: received())
        #expect(stamped.from == from)
        #expect(stamped.from.flatMap(MailMessage.domain(ofAddressField:)) == domain)
    }

    @Test func namesNoRecipientForSeveral() {
        let text = String(decoding: stamper.stamp(Array("\r\n".utf8), received: received(recipient: nil)).content, as: UTF8.self)
        #expect(!text.contains("for <"))
    }

    @Test func sanitisesClientWords() {
        var info = received()
        info.heloName = "evil\r\nBcc: x@y"
        let text = String(decoding: stamper.stamp(Array("\r\n".utf8), received: info).content, as: UTF8.self)
        #expect(text.hasPrefix("Received: from evil__Bcc:_x@y ([127.0.0.1])\r\n"))
    }

    @Test(arguments: [
        (0.0, "Thu, 1 Jan 1970 00:00:00 +0000"),
        (1_795_000_000.0, "Wed, 18 Nov 2026 11:06:40 +0000"),
    ])
    func dateFormat(seconds: Double, expected: String) {
        #expect(TraceHeaders.rfc5322Date(Date(timeIntervalSince1970: seconds)) == expected)
    }
}
