import Testing

@testable import MailMessage

/// Broken input never crashes the parser or the rewriter: every corpus message cut short, with
/// bytes flipped, and with delimiter lines and markup spliced in at random (a fixed seed).
struct RobustnessTests {
    /// SplitMix64: small, seeded, the same on every machine.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let fragments: [[UInt8]] = [
        "\r\n", "\n", "\r", "--", "--b--\r\n", "\r\n--", "<", ">", "\"", "'", "=", "=\r\n", "&", "&#", "<a href=",
        "<a href=\"https://x.example\">", "</body>", "<!--", "-->", "<script>", "</script>", "<![CDATA[",
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n", "Content-Transfer-Encoding: base64\r\n",
        "Content-Transfer-Encoding: quoted-printable\r\n", "Content-Type: text/html\r\n", "{{unsubscribe_url}}", "\0", "\u{FF}",
    ].map { Array($0.utf8) }

    @Test(arguments: Corpus.expectations)
    func mutatedMessagesDoNotCrash(expectation: Corpus.Expectation) throws {
        let original = try Corpus.bytes(expectation.file)
        var random = Generator(state: UInt64(original.count))
        var inputs: [[UInt8]] = []
        for cut in stride(from: 0, to: original.count, by: max(1, original.count / 60)) {
            inputs.append(Array(original[..<cut]))
        }
        for _ in 0..<60 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let at = Int.random(in: 0...bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0 where at < bytes.count: bytes[at] = UInt8.random(in: 0...255, using: &random)
                case 1: bytes.insert(contentsOf: Self.fragments.randomElement(using: &random) ?? [], at: at)
                default: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...40, using: &random)))
                }
            }
            inputs.append(bytes)
        }
        for input in inputs {
            let message = MailMessage(input)
            #expect(message.root.range == 0..<input.count)
            for part in message.allParts {
                #expect(part.headerRange.upperBound == part.bodyRange.lowerBound)
                _ = message.decodedBody(of: part)
                _ = part.header.fields.map(\.decodedValue)
            }
            _ = message.fromDomain
            _ = message.messageID
            let result = try TrackingRewriter.rewrite(message, options: Corpus.options)
            let reparsed = MailMessage(result.bytes)
            #expect(reparsed.allParts.count == message.allParts.count, "the rewrite keeps the part tree")
        }
    }
}
