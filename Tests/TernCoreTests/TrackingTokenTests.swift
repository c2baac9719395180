import Testing
@testable import TernCore

private let secretA = [UInt8](repeating: 0xA1, count: 32)
private let secretB = Array(0..<UInt8(32))
private let secretOther = [UInt8](repeating: 0x5C, count: 16)
private let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

/// Ids as intake makes them: a message at 2026-03-01T12:00:00Z and recipients numbered
/// after it: next in sequence, further on in the same millisecond (each millisecond's
/// sequence starts at a random point), and a millisecond later.
private let realistic: (message: Int64, recipients: [Int64]) = {
    let elapsed: Int64 = 424 * 86_400_000 + 43_200_000
    let message = elapsed << TimeOrderedID.sequenceBits | 0x1234
    return (message, [message + 1, message + 2, message + 1_452_034, (elapsed + 1) << TimeOrderedID.sequenceBits | 0x0777])
}()

private func token(
    _ kind: TrackingTokenKind, _ message: Int64, _ recipient: Int64, link: Int = 0
) -> TrackingToken {
    TrackingToken(
        kind: kind, messageID: MessageID(rawValue: message), recipientID: RecipientID(rawValue: recipient),
        linkIndex: link)
}

private let roundTripCases: [TrackingToken] = {
    var cases = [TrackingToken]()
    for kind in TrackingTokenKind.allCases {
        for recipient in realistic.recipients {
            cases.append(token(kind, realistic.message, recipient, link: kind == .click ? 3 : 0))
        }
    }
    let extremes: [(Int64, Int64)] = [
        (1, 1), (1, 2), (2, 1), (1, .max), (.max, 1), (.max, .max), (.max, .max - 1),
        (0x0123_4567_89ab_cdef, 0x0123_4567_89ab_cdee), (987_654_321, 123_456_789),
        (.min, .max), (.max, .min), (-1, 1), (0, 0),
        (0x7a3f_0c11_2b4d_6e90, 0x1b2c_3d4e_5f60_7182),
    ]
    for (message, recipient) in extremes {
        for kind in TrackingTokenKind.allCases {
            cases.append(token(kind, message, recipient, link: kind == .click ? 1 : 0))
        }
    }
    for link in [0, 1, 127, 128, 16_383, 16_384, 1 << 31, Int.max] {
        cases.append(token(.click, realistic.message, realistic.message + 1, link: link))
    }
    return cases
}()

@Suite struct TrackingTokenTests {
    let keys: TrackingKeys

    init() throws {
        keys = try TrackingKeys(secrets: [secretA, secretB])
    }

    @Test(arguments: roundTripCases)
    func roundTrip(original: TrackingToken) throws {
        let text = keys.token(original)
        #expect(keys.verify(text) == original)
        #expect(keys.verify(Substring(text)) == original)
        #expect(text.utf8.count <= 59)
        #expect(text.allSatisfy { alphabet.contains($0) }, "not URL-safe: \(text)")
    }

    @Test func randomIDsRoundTrip() {
        for _ in 0..<500 {
            for kind in TrackingTokenKind.allCases {
                let original = token(
                    kind, .random(in: .min ... .max), .random(in: .min ... .max),
                    link: kind == .click ? .random(in: 0...Int.max) : 0)
                #expect(keys.verify(keys.token(original)) == original)
            }
        }
    }

    /// Realistic tokens are short enough for a pixel URL and a VERP local part.
    @Test(arguments: [
        (TrackingTokenKind.open, 0, 32), (.click, 0, 34), (.unsubscribe, 0, 32), (.bounce, 0, 32),
        (.open, 2, 36), (.open, 3, 36), (.click, 3, 38),
    ])
    func realisticLength(kind: TrackingTokenKind, recipient: Int, length: Int) {
        let text = keys.token(token(kind, realistic.message, realistic.recipients[recipient], link: 5))
        #expect(text.count == length)
    }

    @Test func nonClickKindsCarryNoLinkIndex() {
        let open = token(.open, realistic.message, realistic.recipients[0], link: 9)
        var expected = open
        expected.linkIndex = 0
        #expect(keys.verify(keys.token(open)) == expected)
        #expect(keys.token(open) == keys.token(expected))
    }

    @Test(arguments: [TrackingTokenKind.open, .click, .bounce])
    func everySingleCharacterChangeIsRejected(kind: TrackingTokenKind) {
        let text = Array(keys.token(token(kind, realistic.message, realistic.recipients[1], link: 2)))
        for index in text.indices {
            for replacement in alphabet + ["=", "+", "/", ".", " ", "%", "\0", "é"] where replacement != text[index] {
                var changed = text
                changed[index] = replacement
                #expect(keys.verify(String(changed)) == nil, "accepted \(String(changed))")
            }
        }
    }

    @Test func truncationsAndAppendedCharactersAreRejected() {
        let text = keys.token(token(.click, realistic.message, realistic.recipients[0], link: 4))
        for length in 0..<text.count {
            #expect(keys.verify(text.prefix(length)) == nil, "accepted prefix of \(length)")
        }
        for suffix in alphabet.map(String.init) + ["=", "==", "AA", "AAA", "AAAA", " ", "\n", "/"] {
            #expect(keys.verify(text + suffix) == nil, "accepted \(text + suffix)")
        }
        #expect(keys.verify(" " + text) == nil)
    }

    @Test func tokenOfOneKindDoesNotVerifyAsAnother() throws {
        let signer = keys.signers[0]
        for kind in TrackingTokenKind.allCases {
            for other in TrackingTokenKind.allCases where other != kind {
                // The attacker relabels a token and even holds a valid MAC for the old kind.
                var body: [UInt8] = [1 << 4 | other.rawValue, signer.keyID]
                Varint.append(UInt64(realistic.message), to: &body)
                Varint.append(Varint.zigzag(realistic.recipients[0] &- realistic.message), to: &body)
                if other == .click { Varint.append(0, to: &body) }
                #expect(keys.verify(Base64URL.encode(body + signer.mac(kind: kind, over: body[...]))) == nil)
                // The same bytes with the right kind's MAC verify: the harness is sound.
                #expect(keys.verify(Base64URL.encode(body + signer.mac(kind: other, over: body[...]))) != nil)
            }
        }
    }

    /// Bytes that carry a valid MAC but break the layout are still refused.
    @Test(arguments: [
        ("well formed (the harness is sound)", 0x11, [0x01, 0x02], TrackingTokenKind.open, true),
        ("non-canonical message varint", 0x11, [0x80, 0x80, 0x00, 0x02], .open, false),
        ("non-canonical delta varint", 0x11, [0x01, 0x82, 0x00], .open, false),
        ("message varint over 64 bits", 0x11, Array(repeating: 0xff, count: 9) + [0x02, 0x02], .open, false),
        ("varint of 11 bytes", 0x11, Array(repeating: 0xff, count: 9) + [0x81, 0x00, 0x02], .open, false),
        ("link index on an open", 0x11, [0x01, 0x02, 0x00], .open, false),
        ("trailing byte", 0x12, [0x01, 0x02, 0x07, 0x00], .click, false),
        ("click without link index", 0x12, [0x01, 0x02], .click, false),
        ("link index over Int.max", 0x12, [0x01, 0x02] + Array(repeating: 0x80, count: 9) + [0x01], .click, false),
        ("version 0", 0x01, [0x01, 0x02], .open, false),
        ("version 2", 0x21, [0x01, 0x02], .open, false),
        ("unknown kind 5", 0x15, [0x01, 0x02], .open, false),
        ("kind 0", 0x10, [0x01, 0x02], .open, false),
    ] as [(String, UInt8, [UInt8], TrackingTokenKind, Bool)])
    func malformedButSignedIsRejected(
        name: String, header: UInt8, rest: [UInt8], macKind: TrackingTokenKind, valid: Bool
    ) {
        let signer = keys.signers[0]
        let body = [header, signer.keyID] + rest
        let verified = keys.verify(Base64URL.encode(body + signer.mac(kind: macKind, over: body[...])))
        #expect((verified != nil) == valid, "\(name)")
    }

    @Test func oldSecretVerifiesOnlyWhileListed() throws {
        let before = try TrackingKeys(secrets: [secretB])
        let after = try TrackingKeys(secrets: [secretA, secretB])
        let retired = try TrackingKeys(secrets: [secretA])
        let original = token(.unsubscribe, realistic.message, realistic.recipients[2])
        let old = before.token(original)
        #expect(after.verify(old) == original)
        #expect(retired.verify(old) == nil)
        let new = after.token(original)
        #expect(new != old)
        #expect(retired.verify(new) == original)
        #expect(before.verify(new) == nil)
    }

    @Test func anotherServersSecretFails() throws {
        let other = try TrackingKeys(secrets: [secretOther])
        for original in roundTripCases.prefix(20) {
            #expect(other.verify(keys.token(original)) == nil)
            #expect(keys.verify(other.token(original)) == nil)
        }
    }

    /// Two secrets that share a key id both get tried.
    @Test func keyIDCollisionTriesBoth() throws {
        var seen = [UInt8: [UInt8]]()
        var pair: ([UInt8], [UInt8])?
        for counter in 0..<UInt8(255) {
            let secret = [UInt8](repeating: counter, count: 16)
            let id = TrackingKeys.Signer(secret: secret).keyID
            if let earlier = seen[id] {
                pair = (earlier, secret)
                break
            }
            seen[id] = secret
        }
        let (first, second) = try #require(pair)
        let both = try TrackingKeys(secrets: [first, second])
        let original = token(.bounce, realistic.message, realistic.recipients[0])
        #expect(both.verify(try TrackingKeys(secrets: [first]).token(original)) == original)
        #expect(both.verify(try TrackingKeys(secrets: [second]).token(original)) == original)
    }

    @Test(arguments: [
        ([], TrackingKeysError.Code.noSecret),
        ([[UInt8](repeating: 1, count: 15)], .secretTooShort),
        ([[UInt8](repeating: 1, count: 32), []], .secretTooShort),
        (Array(repeating: [UInt8](repeating: 1, count: 32), count: 9), .tooManySecrets),
    ] as [([[UInt8]], TrackingKeysError.Code)])
    func refusesBadSecrets(secrets: [[UInt8]], code: TrackingKeysError.Code) {
        #expect {
            try TrackingKeys(secrets: secrets)
        } throws: { error in
            (error as? TrackingKeysError)?.code == code
        }
    }

    @Test(arguments: [
        "", "A", "AA", "AAAA", "====", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", "hello world", "../../etc/passwd",
        String(repeating: "A", count: 34), String(repeating: "_", count: 59), String(repeating: "A", count: 65),
        "EAEBAgMEBQYHCAkKCwwNDg8QERITFBUWFxg=", "💥💥💥💥💥💥💥💥💥💥💥💥💥💥💥💥💥💥💥💥💥",
    ])
    func garbageFails(text: String) {
        #expect(keys.verify(text) == nil)
    }

    /// A megabyte of token characters is refused after reading one character past the
    /// longest token, whatever the machine's speed.
    @Test func veryLongInputIsRefusedWithoutReadingIt() {
        let long = String(repeating: "A", count: 1 << 20)
        #expect(keys.verify(long) == nil)
        #expect(keys.verifyAddressToken(String(repeating: "a", count: 1 << 20)) == nil)
        let base64 = CountingCharacters(repeating: UInt8(ascii: "A"), count: 1 << 20)
        #expect(Base64URL.decode(base64, maximumLength: TrackingKeys.maximumTokenLength) == nil)
        #expect(base64.read <= TrackingKeys.maximumTokenLength + 1)
        let base32 = CountingCharacters(repeating: UInt8(ascii: "a"), count: 1 << 20)
        #expect(Base32.decode(base32, maximumLength: TrackingKeys.maximumAddressTokenLength) == nil)
        #expect(base32.read <= TrackingKeys.maximumAddressTokenLength + 1)
    }

    @Test(arguments: [
        ([] as [UInt8], ""), ([0], "AA"), ([0xff], "_w"), ([0xfb, 0xff], "-_8"), ([1, 2, 3], "AQID"),
        ([0xde, 0xad, 0xbe, 0xef], "3q2-7w"),
    ])
    func base64URL(bytes: [UInt8], text: String) {
        #expect(Base64URL.encode(bytes) == text)
        #expect(Base64URL.decode(text.utf8, maximumLength: 64) == bytes)
    }

    /// Each byte string has one spelling: stray low bits in the last character are refused.
    @Test(arguments: ["AB", "_x", "AQIE", "AQIDBB", "AQIDBAF", "A", "AQIDB", "AQ==", "AQ=", "AQ ID"])
    func base64URLIsStrict(text: String) {
        if text == "AQIE" {
            #expect(Base64URL.decode(text.utf8, maximumLength: 64) == [1, 2, 4])
        } else {
            #expect(Base64URL.decode(text.utf8, maximumLength: 64) == nil)
        }
    }

    @Test(arguments: roundTripCases)
    func addressTokenRoundTripsInEitherCase(original: TrackingToken) throws {
        let text = keys.addressToken(original)
        #expect(keys.verifyAddressToken(text) == original)
        #expect(keys.verifyAddressToken(text.uppercased()) == original)
        #expect(text.utf8.count <= TrackingKeys.maximumAddressTokenLength)
        #expect(text.allSatisfy { "abcdefghijklmnopqrstuvwxyz234567".contains($0) }, "not a base32 local part: \(text)")
        // The two spellings carry the same bytes, so neither verifies as the other.
        #expect(keys.verify(text) == nil)
    }

    /// Intake's ids keep a VERP address (`b-` and the token) and the unsubscribe address
    /// (`unsubscribe+` and the token) inside the 64 octets of a local part.
    @Test func addressTokensOfRealisticIDsFitALocalPart() {
        for recipient in realistic.recipients {
            for kind in TrackingTokenKind.allCases {
                let text = keys.addressToken(token(kind, realistic.message, recipient, link: 7))
                #expect(("unsubscribe+" + text).utf8.count <= 64, "\(text)")
            }
        }
    }

    @Test func alteredAddressTokensFail() {
        let text = keys.addressToken(token(.bounce, realistic.message, realistic.recipients[0]))
        var bytes = Array(text.utf8)
        for index in bytes.indices {
            let original = bytes[index]
            bytes[index] = original == UInt8(ascii: "a") ? UInt8(ascii: "b") : UInt8(ascii: "a")
            #expect(keys.verifyAddressToken(String(decoding: bytes, as: UTF8.self)) == nil)
            bytes[index] = original
        }
        #expect(keys.verifyAddressToken(text + "a") == nil)
        #expect(keys.verifyAddressToken(String(text.dropLast())) == nil)
        #expect(keys.verifyAddressToken(text + "=") == nil)
    }

    /// RFC 4648 §10, in lower case.
    @Test(arguments: [
        ("", ""), ("f", "my"), ("fo", "mzxq"), ("foo", "mzxw6"), ("foob", "mzxw6yq"), ("fooba", "mzxw6ytb"),
        ("foobar", "mzxw6ytboi"),
    ])
    func base32(plain: String, text: String) {
        #expect(Base32.encode(Array(plain.utf8)) == text)
        #expect(Base32.decode(text.utf8, maximumLength: 64) == Array(plain.utf8))
        #expect(Base32.decode(text.uppercased().utf8, maximumLength: 64) == Array(plain.utf8))
    }

    /// One spelling per byte string: stray low bits and impossible lengths are refused.
    @Test(arguments: ["mz", "m", "mzx", "mzxw6y", "mzxw6yr", "my==", "my1", "m y", "mzxw6ytboimzxw6ytboi"])
    func base32IsStrict(text: String) {
        #expect(Base32.decode(text.utf8, maximumLength: 16) == nil)
    }

    @Test(arguments: [0, 1, -1, 63, -64, 64, .max, .min] as [Int64])
    func zigzag(value: Int64) {
        #expect(Varint.unzigzag(Varint.zigzag(value)) == value)
        #expect(Varint.zigzag(value) == (value >= 0 ? UInt64(value) * 2 : UInt64(-(value + 1)) * 2 + 1))
    }
}

/// `count` copies of one character that counts how many were read (and has no contiguous
/// storage, so a decoder must walk it).
private final class CountingCharacters: Sequence {
    let character: UInt8
    let count: Int
    private(set) var read = 0

    init(repeating character: UInt8, count: Int) {
        self.character = character
        self.count = count
    }

    func makeIterator() -> AnyIterator<UInt8> {
        AnyIterator { [self] in
            guard read < count else { return nil }
            read += 1
            return character
        }
    }
}
