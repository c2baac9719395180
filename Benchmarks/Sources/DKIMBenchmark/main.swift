// DKIMBenchmark — what DKIM signing costs per message.
//
// For a 5 KB and a 1 MB message, signs with RSA-2048 and with Ed25519 (`DKIMSigner.sign(message:)`:
// body hash + header hash + signature) and prints the median microseconds per signature over
// several rounds; then the cost of the signature alone (a precomputed body hash) and the body
// hashing rate in MB/s for relaxed and simple canonicalisation.
//
//   swift run -c release --package-path Benchmarks DKIMBenchmark [rounds]      (default 7)
import Crypto
import DKIM
import Foundation

let rounds = CommandLine.arguments.count > 1 ? max(1, Int(CommandLine.arguments[1]) ?? 7) : 7

/// A plain-text-and-HTML message of about `size` bytes: 76-column lines, some double spaces and
/// trailing whitespace (so relaxed canonicalisation has work to do), 8-bit UTF-8.
func makeMessage(size: Int) -> [UInt8] {
    var header = ""
    header += "From: \"Tern Benchmarks\" <bench@example.com>\r\n"
    header += "To: Someone <someone@example.net>\r\n"
    header += "Subject: Your receipt, with a fairly long subject line to fold some day\r\n"
    header += "Date: Tue, 02 Jun 2026 10:00:00 +0000\r\n"
    header += "Message-ID: <0196f8a0-1c2b-7d3e-8f4a-5b6c7d8e9f00@example.com>\r\n"
    header += "MIME-Version: 1.0\r\n"
    header += "Content-Type: text/plain; charset=utf-8\r\n"
    header += "Content-Transfer-Encoding: 8bit\r\n"
    header += "List-Unsubscribe: <https://t.example.com/u/abc>, <mailto:u-abc@example.com>\r\n"
    header += "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    header += "\r\n"
    var bytes = Array(header.utf8)
    let lines = [
        "Thank you for your order. Your parcel leaves our warehouse today  and arrives",
        "within three working days. Prices include VAT; the invoice is attached.   ",
        "Grüße aus München — das Team wünscht einen schönen Tag und bis bald.",
        "",
        "\tItem 1 ........................................ 12.50 EUR",
    ]
    var k = 0
    while bytes.count < size {
        bytes += Array(lines[k % lines.count].utf8) + [13, 10]
        k += 1
    }
    return bytes
}

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Median nanoseconds per call of `body` over `rounds` rounds of `iterations` calls.
func measure(iterations: Int, _ body: () throws -> Void) rethrows -> Double {
    var perCall: [Double] = []
    for _ in 0..<rounds {
        let start = now()
        for _ in 0..<iterations { try body() }
        perCall.append(Double(now() - start) / Double(iterations))
    }
    perCall.sort()
    return perCall[perCall.count / 2]
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
}

let rsa = try DKIMPrivateKey.generateRSA(bits: 2048)
let ed25519 = DKIMPrivateKey.generateEd25519()
let signers: [(String, DKIMSigner)] = [
    ("rsa-2048", try DKIMSigner(domain: "example.com", selector: "bench", key: rsa)),
    ("ed25519", try DKIMSigner(domain: "example.com", selector: "bench", key: ed25519)),
]
let timestamp = Date(timeIntervalSince1970: 1_780_000_000)
let messages: [(String, [UInt8], Int)] = [("5 KB", makeMessage(size: 5_000), 200), ("1 MB", makeMessage(size: 1_000_000), 10)]

print("DKIM signing, median of \(rounds) rounds")
print(pad("message", 10) + pad("key", 10) + pad("µs per signature", 18) + "fields")
var sink = 0
for (label, message, iterations) in messages {
    for (keyName, signer) in signers {
        let ns = try measure(iterations: iterations) {
            sink &+= try signer.sign(message: message, timestamp: timestamp).utf8.count
        }
        print(pad(label, 10) + pad(keyName, 10) + pad(String(format: "%.1f", ns / 1000), 18) + "\(message.count) bytes")
    }
}

let small = messages[0].1
let split = small.firstRange(of: [13, 10, 13, 10]).map { $0.lowerBound + 2 } ?? small.count
let header = Array(small[..<split])
let bodyHash = DKIMBodyHasher.hash(Array(small[(split + 2)...]))
print("")
print("signature only (header canonicalisation + sign, body hash given)")
for (keyName, signer) in signers {
    let ns = try measure(iterations: 200) {
        sink &+= try signer.signatureField(header: header, bodyHash: bodyHash, timestamp: timestamp).utf8.count
    }
    print(pad(keyName, 10) + String(format: "%.1f µs", ns / 1000))
}

print("")
print("body hashing, 1 MB bodies: text (with whitespace runs to collapse) and base64 (an attachment)")
let big = messages[1].1
var base64Body: [UInt8] = []
var block: [UInt8] = (0..<57).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
while base64Body.count < 1_000_000 {
    base64Body += Array(Data(block).base64EncodedString().utf8) + [13, 10]
    block = block.map { $0 &* 5 &+ 1 }
}
for (label, body) in [("text", big), ("base64", base64Body)] {
    for canonicalization in DKIMCanonicalization.allCases {
        let ns = measure(iterations: 10) {
            var hasher = DKIMBodyHasher(canonicalization: canonicalization)
            hasher.update(body)
            sink &+= Int(hasher.finalize()[0])
        }
        print(pad("\(label) \(canonicalization.rawValue)", 28) + String(format: "%.0f MB/s", Double(body.count) / ns * 1e9 / 1e6))
    }
}
// SHA-256 of the raw bytes: what hashing costs with no canonicalisation at all.
let raw = measure(iterations: 10) {
    sink &+= Int(Array(SHA256.hash(data: big))[0])
}
print(pad("sha-256 alone", 28) + String(format: "%.0f MB/s", Double(big.count) / raw * 1e9 / 1e6))
// 64 KB chunks, as a body read from a store or socket arrives.
let chunked = measure(iterations: 10) {
    var hasher = DKIMBodyHasher()
    var offset = 0
    while offset < big.count {
        let end = min(offset + 65_536, big.count)
        hasher.update(big[offset..<end])
        offset = end
    }
    sink &+= Int(hasher.finalize()[0])
}
print(pad("text relaxed, 64 KB chunks", 28) + String(format: "%.0f MB/s", Double(big.count) / chunked * 1e9 / 1e6))
if sink == 42 { print("") }  // keeps the work from being optimised away
