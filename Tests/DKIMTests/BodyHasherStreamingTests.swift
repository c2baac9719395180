import Crypto
import Testing
import TernCore

@testable import DKIM

/// The body hash does not depend on how the body is cut into chunks.
struct BodyHasherStreamingTests {
    /// Bodies chosen for their edges: CRLF CRLF runs, trailing empty lines, WSP at line ends and
    /// at the end, 8-bit bytes, bare CR and LF, no final CRLF, nothing at all.
    static let namedBodies: [(String, [UInt8])] = [
        ("empty", []),
        ("one CRLF", Array("\r\n".utf8)),
        ("only empty lines", Array("\r\n\r\n\r\n\r\n".utf8)),
        ("only whitespace lines", Array(" \r\n\t\t\r\n  \t \r\n".utf8)),
        ("RFC 6376 §3.4.5", Array(" C \r\nD \t E\r\n\r\n\r\n".utf8)),
        ("RFC 8463 A.1", Array("Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n".utf8)),
        ("no final CRLF", Array("line one\r\nline two".utf8)),
        ("trailing WSP, no final CRLF", Array("line one\r\nline two \t ".utf8)),
        ("empty lines inside and at the end", Array("a\r\n\r\n\r\nb\r\n\r\n\r\n\r\n".utf8)),
        ("WSP-only lines inside", Array("a\r\n  \r\n\t\r\nb\r\n".utf8)),
        ("8-bit", [0xC3, 0xA9, 0x20, 0x20, 0xFF, 0xFE, 0x0D, 0x0A, 0x80, 0x09, 0x0D, 0x0A, 0x0D, 0x0A]),
        ("bare CR and LF", Array("a\rb\nc \r d\t\n\r\r\n\r".utf8)),
        ("CR CR LF", Array("x\r\r\n\r\r\ny".utf8)),
        ("long WSP runs", Array(("a" + String(repeating: " ", count: 300) + "b" + String(repeating: "\t ", count: 200) + "\r\n").utf8)),
        ("many empty lines then content", Array((String(repeating: "\r\n", count: 500) + "end").utf8)),
    ]

    /// Random bodies from pieces that stress the state machine.
    static func randomBody(_ rng: inout SplitMix64) -> [UInt8] {
        let pieces: [[UInt8]] = [
            Array("word".utf8), Array("x".utf8), [0x20], [0x09], [0x20, 0x20], [0x0D, 0x0A], [0x0D, 0x0A, 0x0D, 0x0A],
            [0x0D], [0x0A], [0xC3, 0xA9], [0xFF], [0x00], Array(" \t ".utf8), Array("=\r\n".utf8),
        ]
        var body: [UInt8] = []
        let count = Int.random(in: 0...40, using: &rng)
        for _ in 0..<count {
            body += pieces[Int.random(in: 0..<pieces.count, using: &rng)]
        }
        return body
    }

    /// Cuts `body` at random places: sometimes into single bytes, sometimes big pieces, sometimes
    /// empty chunks in between.
    static func randomChunks(_ body: [UInt8], _ rng: inout SplitMix64) -> [[UInt8]] {
        var chunks: [[UInt8]] = []
        var i = 0
        let maxChunk = [1, 2, 3, 7, 64][Int.random(in: 0..<5, using: &rng)]
        while i < body.count {
            if Int.random(in: 0..<8, using: &rng) == 0 { chunks.append([]) }
            let size = Int.random(in: 1...maxChunk, using: &rng)
            let end = min(body.count, i + size)
            chunks.append(Array(body[i..<end]))
            i = end
        }
        return chunks
    }

    static func hash(_ chunks: [[UInt8]], _ canonicalization: DKIMCanonicalization) -> [UInt8] {
        var hasher = DKIMBodyHasher(canonicalization: canonicalization)
        for chunk in chunks { hasher.update(chunk) }
        return hasher.finalize()
    }

    static func check(_ name: String, _ body: [UInt8], _ rng: inout SplitMix64) {
        for canonicalization in DKIMCanonicalization.allCases {
            let expected = referenceCanonicalBody(body, canonicalization)
            let expectedHash = Array(SHA256.hash(data: expected))
            #expect(streamedCanonicalBody([body], canonicalization) == expected, "\(name), \(canonicalization), whole")
            #expect(streamedCanonicalBody(body.map { [$0] }, canonicalization) == expected, "\(name), \(canonicalization), byte by byte")
            #expect(hash([body], canonicalization) == expectedHash, "\(name), \(canonicalization), hash")
            // Every single cut point, then random cuts.
            for cut in 0...body.count {
                let chunks = [Array(body[..<cut]), Array(body[cut...])]
                #expect(hash(chunks, canonicalization) == expectedHash, "\(name), \(canonicalization), cut at \(cut)")
            }
            for round in 0..<40 {
                let chunks = randomChunks(body, &rng)
                #expect(streamedCanonicalBody(chunks, canonicalization) == expected, "\(name), \(canonicalization), round \(round): \(chunks.map(\.count))")
            }
        }
    }

    @Test func namedBodiesAnyChunking() {
        var rng = SplitMix64(seed: 0xD1C1_5EED)
        for (name, body) in Self.namedBodies {
            Self.check(name, body, &rng)
        }
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func randomBodiesAnyChunking(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for index in 0..<60 {
            let body = Self.randomBody(&rng)
            Self.check("seed \(seed) body \(index) \(body)", body, &rng)
        }
    }

    @Test func finalizeLeavesTheHasherUsable() {
        var hasher = DKIMBodyHasher()
        hasher.update(Array("a\r\n\r\n".utf8))
        let first = hasher.finalize()
        #expect(first == DKIMBodyHasher.hash(Array("a\r\n".utf8)))
        hasher.update(Array("b\r\n".utf8))
        #expect(hasher.finalize() == DKIMBodyHasher.hash(Array("a\r\n\r\nb\r\n".utf8)))
    }

    @Test func sliceAndArrayAndPointerAgree() {
        let body = Array("Hello  world \r\n\r\n".utf8)
        var a = DKIMBodyHasher()
        a.update(body)
        var b = DKIMBodyHasher()
        b.update(body[0..<5])
        b.update(body[5...])
        var c = DKIMBodyHasher()
        body.withUnsafeBytes { c.update($0) }
        #expect(a.finalize() == b.finalize())
        #expect(a.finalize() == c.finalize())
    }
}
