import NIOCore
import Testing
@testable import TernDNS

/// Real-shaped responses, as a recursive resolver sends them, compression pointers included.
enum Vectors {
    /// `gmail.com MX`: three MX records whose exchanges share `l.google.com` through pointers to pointers,
    /// plus A and AAAA glue in the additional section.
    static let gmailMX = hexBytes("""
        1a2b 8580 0001 0003 0000 0002
        05676d61696c 03636f6d 00 000f 0001
        c00c 000f 0001 00000e10 001b 0005 0d676d61696c2d736d74702d696e 016c 06676f6f676c65 c012
        c00c 000f 0001 00000e10 0009 000a 04616c7431 c029
        c00c 000f 0001 00000e10 0009 0014 04616c7432 c029
        c029 0001 0001 0000012c 0004 8efa661b
        c029 001c 0001 0000012c 0010 2a001450 40130c00 00000000 0000001a
        """)
    /// `nope.example.com MX` → NXDOMAIN with the zone's SOA in the authority section (RFC 2308 §2.1).
    static let nxdomain = hexBytes("""
        beef 8583 0001 0000 0001 0000
        046e6f7065 076578616d706c65 03636f6d 00 000f 0001
        c011 0006 0001 00000708 002c 026e73 056963616e6e 036f7267 00 036e6f63 03646e73 c031
        78a50605 00001c20 00000e10 00127500 0000012c
        """)
    /// `example.com TXT`: an SPF record and a DKIM-like record split in two character-strings.
    static let txt = hexBytes("""
        0102 8580 0001 0002 0000 0000
        076578616d706c65 03636f6d 00 0010 0001
        c00c 0010 0001 00015180 000c 0b763d73706631202d616c6c
        c00c 0010 0001 00015180 0020 16763d444b494d313b206b3d7273613b20703d4d494766 084d413047435371 47
        """)
    /// `www.example.com A` answered through a CNAME.
    static let cname = hexBytes("""
        0a0b 8580 0001 0002 0000 0000
        03777777 076578616d706c65 03636f6d 00 0001 0001
        c00c 0005 0001 00000258 0002 c010
        c010 0001 0001 00000078 0004 5db8d70e
        """)
}

@Suite("DNS message codec (RFC 1035 §4)")
struct DNSMessageTests {
    @Test func decodesMXWithNestedCompression() throws {
        let message = try DNSMessage(decoding: buffer(Vectors.gmailMX))
        #expect(message.header.id == 0x1A2B)
        #expect(message.header.isResponse)
        #expect(message.header.recursionDesired && message.header.recursionAvailable)
        #expect(!message.header.isTruncated)
        #expect(message.header.responseCode == .noError)
        #expect(message.questions == [DNSQuestion(name: name("gmail.com"), type: .mx)])
        #expect(message.answers.map(\.data) == [
            .mx(MXRecord(preference: 5, exchange: name("gmail-smtp-in.l.google.com"))),
            .mx(MXRecord(preference: 10, exchange: name("alt1.gmail-smtp-in.l.google.com"))),
            .mx(MXRecord(preference: 20, exchange: name("alt2.gmail-smtp-in.l.google.com"))),
        ])
        #expect(message.answers.allSatisfy { $0.ttl == 3600 && $0.name == name("GMAIL.com") })
        #expect(message.additionals.map(\.data) == [
            .a(IPv4Address(142, 250, 102, 27)),
            .aaaa(IPv6Address("2a00:1450:4013:c00::1a")!),
        ])
    }

    @Test func decodesNXDOMAINWithSOA() throws {
        let message = try DNSMessage(decoding: buffer(Vectors.nxdomain))
        #expect(message.header.responseCode == .nameError)
        #expect(message.answers.isEmpty)
        let soa = SOARecord(
            primaryServer: name("ns.icann.org"), responsibleMailbox: name("noc.dns.icann.org"), serial: 2_024_080_901,
            refresh: 7200, retry: 3600, expire: 1_209_600, minimum: 300
        )
        #expect(message.authorities == [DNSResourceRecord(name: name("example.com"), ttl: 1800, data: .soa(soa))])
    }

    @Test func decodesTXTCharacterStrings() throws {
        let message = try DNSMessage(decoding: buffer(Vectors.txt))
        let records = message.answers.compactMap { record -> TXTRecord? in
            if case .txt(let txt) = record.data { return txt }
            return nil
        }
        #expect(records.map(\.strings.count) == [1, 2])
        #expect(records.map(\.text) == ["v=spf1 -all", "v=DKIM1; k=rsa; p=MIGfMA0GCSqG"])
    }

    @Test func decodesCNAMEChain() throws {
        let message = try DNSMessage(decoding: buffer(Vectors.cname))
        #expect(message.answers == [
            DNSResourceRecord(name: name("www.example.com"), ttl: 600, data: .cname(name("example.com"))),
            DNSResourceRecord(name: name("example.com"), ttl: 120, data: .a(IPv4Address(93, 184, 215, 14))),
        ])
    }

    @Test func encodesQueryWithEDNS() {
        let query = DNSMessage.query(id: 0xABCD, name: name("Example.com"), type: .mx)
        #expect(Array(buffer: query.bytes) == hexBytes("""
            abcd 0100 0001 0000 0000 0001
            074578616d706c65 03636f6d 00 000f 0001
            00 0029 04d0 00000000 0000
            """))
        #expect(query.ednsPayloadSize == 1232)
    }

    @Test func encodesQueryWithoutEDNS() {
        let query = DNSMessage.query(id: 1, name: .root, type: .soa, ednsPayloadSize: nil)
        #expect(Array(buffer: query.bytes) == hexBytes("0001 0100 0001 0000 0000 0000 00 0006 0001"))
    }

    static let roundTripRecords: [DNSRecordData] = [
        .a(IPv4Address(192, 0, 2, 1)),
        .aaaa(IPv6Address("2001:db8::1")!),
        .mx(MXRecord(preference: 0, exchange: .root)),
        .txt(TXTRecord(String(repeating: "k", count: 600))),
        .txt(TXTRecord(strings: [[], [0xFF, 0x00]])),
        .cname(name("target.example")),
        .ns(name("ns1.example")),
        .soa(SOARecord(primaryServer: name("a.example"), responsibleMailbox: name("b.example"), serial: 1, refresh: 2, retry: 3, expire: 4, minimum: 5)),
        .unknown(DNSRecordType(rawValue: 99), [1, 2, 3]),
        .unknown(DNSRecordType(rawValue: 65280), []),
    ]

    @Test(arguments: roundTripRecords)
    func roundTripsRecordData(_ data: DNSRecordData) throws {
        let message = DNSMessage(
            header: DNSHeader(id: 7, isResponse: true, isTruncated: true, responseCode: .refused),
            questions: [DNSQuestion(name: name("q.example"), type: data.type)],
            answers: [DNSResourceRecord(name: name("q.example"), ttl: 42, data: data)]
        )
        #expect(try DNSMessage(decoding: message.bytes) == message)
    }

    @Test func readsTTLWithHighBitAsZero() throws {
        var bytes = Vectors.cname
        bytes[bytes.count - 10] = 0x80  // TTL of the A record: 0x80000078
        let message = try DNSMessage(decoding: buffer(bytes))
        #expect(message.answers[1].ttl == 0)
    }

    @Test func respectsReaderIndexForPointers() throws {
        var prefixed = ByteBuffer(bytes: [0xDE, 0xAD, 0xBE])
        prefixed.writeBytes(Vectors.gmailMX)
        prefixed.moveReaderIndex(forwardBy: 3)
        #expect(try DNSMessage(decoding: prefixed) == DNSMessage(decoding: buffer(Vectors.gmailMX)))
    }

    struct Malformed: CustomTestStringConvertible, Sendable {
        var label: String
        var bytes: [UInt8]
        var code: DNSWireError.Code
        var testDescription: String { label }
    }

    static let header1Q = "0001 8180 0001 0000 0000 0000"
    static let header1A = "0001 8180 0001 0001 0000 0000 01 61 00 0001 0001"

    static let malformed: [Malformed] = [
        Malformed(label: "empty", bytes: [], code: .truncated),
        Malformed(label: "short header", bytes: hexBytes("0001 8180 0001"), code: .truncated),
        Malformed(label: "question missing", bytes: hexBytes(header1Q), code: .truncated),
        Malformed(label: "label past end", bytes: hexBytes(header1Q + "05 6162"), code: .truncated),
        Malformed(label: "pointer to itself", bytes: hexBytes(header1Q + "c00c 0001 0001"), code: .badPointer),
        Malformed(label: "forward pointer", bytes: hexBytes(header1Q + "c00e 00 0001 0001"), code: .badPointer),
        Malformed(label: "pointer loop", bytes: hexBytes(header1Q + "01 61 c00e 0001 0001 c00c"), code: .badPointer),
        Malformed(label: "pointer cut short", bytes: hexBytes(header1Q + "c0"), code: .truncated),
        Malformed(label: "label type 01", bytes: hexBytes(header1Q + "41 00 0001 0001"), code: .badLabelType),
        Malformed(label: "label type 10", bytes: hexBytes(header1Q + "81 00 0001 0001"), code: .badLabelType),
        Malformed(
            label: "name over 255", bytes: hexBytes(header1Q + String(repeating: "3f" + String(repeating: "61", count: 63), count: 4) + "00 0001 0001"),
            code: .nameTooLong
        ),
        Malformed(label: "A with 3 octets", bytes: hexBytes(header1A + "00 0001 0001 00000001 0003 010203"), code: .badRData),
        Malformed(label: "AAAA with 4 octets", bytes: hexBytes(header1A + "00 001c 0001 00000001 0004 01020304"), code: .badRData),
        Malformed(label: "RDATA past end", bytes: hexBytes(header1A + "00 0001 0001 00000001 0004 0102"), code: .truncated),
        Malformed(label: "MX name overruns RDLENGTH", bytes: hexBytes(header1A + "00 000f 0001 00000001 0003 0001 01 61 00"), code: .badRData),
        Malformed(label: "MX shorter than RDLENGTH", bytes: hexBytes(header1A + "00 000f 0001 00000001 0005 0001 00 ffff"), code: .badRData),
        Malformed(label: "TXT string overruns", bytes: hexBytes(header1A + "00 0010 0001 00000001 0002 05 61"), code: .badRData),
        Malformed(label: "TXT empty", bytes: hexBytes(header1A + "00 0010 0001 00000001 0000"), code: .badRData),
        Malformed(label: "huge count", bytes: hexBytes("0001 8180 ffff 0000 0000 0000"), code: .badRData),
    ]

    @Test(arguments: malformed)
    func rejectsMalformed(_ input: Malformed) {
        #expect {
            _ = try DNSMessage(decoding: buffer(input.bytes))
        } throws: { error in
            (error as? DNSWireError)?.code == input.code
        }
    }

    @Test(arguments: [Vectors.gmailMX, Vectors.nxdomain, Vectors.txt, Vectors.cname])
    func everyTruncationThrows(_ bytes: [UInt8]) {
        for length in 0..<bytes.count {
            #expect(throws: DNSWireError.self, "prefix of \(length) octets") {
                try DNSMessage(decoding: buffer(Array(bytes.prefix(length))))
            }
        }
    }

    /// Random corruption of real responses and random garbage: decoding either succeeds or throws, never traps.
    @Test func survivesGarbage() {
        var random = SeededGenerator(seed: 0x7E54)
        let seeds = [Vectors.gmailMX, Vectors.nxdomain, Vectors.txt, Vectors.cname]
        var decoded = 0
        for round in 0..<20_000 {
            var bytes: [UInt8]
            if round % 4 == 0 {
                bytes = (0..<Int.random(in: 0..<300, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            } else {
                bytes = seeds[round % seeds.count]
                for _ in 0..<Int.random(in: 1...6, using: &random) {
                    let index = Int.random(in: 0..<bytes.count, using: &random)
                    bytes[index] = [0xC0, 0xFF, 0x00, 0x3F, UInt8.random(in: 0...255, using: &random)].randomElement(using: &random)!
                }
                if Bool.random(using: &random) { bytes.removeLast(Int.random(in: 0..<bytes.count, using: &random)) }
            }
            if (try? DNSMessage(decoding: buffer(bytes))) != nil { decoded += 1 }
        }
        #expect(decoded > 0)
    }
}

@Suite("Names and addresses")
struct DNSNameTests {
    @Test(arguments: [
        ("example.com", ["example", "com"]),
        ("example.com.", ["example", "com"]),
        (".", []),
        ("a", ["a"]),
    ])
    func parsesNames(_ text: String, _ labels: [String]) throws {
        #expect(try DNSName(text).labels == labels)
    }

    @Test(arguments: ["", "..", "a..b", ".a", String(repeating: "x", count: 64) + ".com", Array(repeating: "abcdefghi", count: 26).joined(separator: ".")])
    func rejectsBadNames(_ text: String) {
        #expect(throws: DNSWireError.self) { try DNSName(text) }
    }

    @Test func comparesCaseInsensitively() {
        #expect(name("MX.Example.COM") == name("mx.example.com"))
        #expect(Set([name("A.b"), name("a.B")]).count == 1)
        #expect(name("a.b") != name("a.b.c"))
    }

    @Test(arguments: [
        ("192.0.2.1", "192.0.2.1"),
        ("[10.0.0.255]", "10.0.0.255"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("::", "::"),
        ("2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8::", "2001:db8::"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("::ffff:192.0.2.128", "::ffff:c000:280"),
        ("fe80::1:2", "fe80::1:2"),
    ])
    func parsesAndFormatsAddresses(_ text: String, _ formatted: String) {
        #expect(IPAddress(text)?.description == formatted)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.a", ":::", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "g::1", "fe80::1%eth0", "example.com"])
    func rejectsBadAddresses(_ text: String) {
        #expect(IPAddress(text) == nil)
    }
}
