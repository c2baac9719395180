#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Just enough PEM and DER to tell which key a PEM file holds before handing it to swift-crypto.
///
/// - SeeAlso: RFC 7468 (PEM labels), RFC 5208 §5 (PrivateKeyInfo), RFC 8410 §7 (Ed25519 in PKCS#8)
enum PEM {
    struct Document {
        /// The label of the first block: `PRIVATE KEY`, `RSA PRIVATE KEY`, …
        var label: String
        var der: [UInt8]
    }

    /// The first `-----BEGIN …-----` block, base64-decoded; nil when there is none or it does not decode.
    static func firstDocument(in text: String) -> Document? {
        var label: String?
        var base64 = ""
        for rawLine in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = rawLine.trimmingWhitespace()
            if let current = label {
                if line == "-----END \(current)-----" {
                    guard let data = Data(base64Encoded: base64) else { return nil }
                    return Document(label: current, der: Array(data))
                }
                // RFC 1421 headers (Proc-Type, DEK-Info) mark an encrypted legacy key: keep them
                // out of the base64 so the caller sees a decodable document and can refuse it.
                if line.contains(":") { return Document(label: "ENCRYPTED " + current, der: []) }
                base64 += line
            } else if line.hasPrefix("-----BEGIN "), line.hasSuffix("-----"), line.count > 16 {
                label = String(line.dropFirst(11).dropLast(5))
            }
        }
        return nil
    }

    /// DER encoding of `1.3.101.112` (id-Ed25519, RFC 8410 §3).
    static let ed25519OID: [UInt8] = [0x06, 0x03, 0x2B, 0x65, 0x70]
    /// DER encoding of `1.2.840.113549.1.1.1` (rsaEncryption, RFC 8017 Appendix C).
    static let rsaEncryptionOID: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]

    /// The algorithm OID (tag, length and content) of a PKCS#8 PrivateKeyInfo:
    /// `SEQUENCE { INTEGER version, SEQUENCE { OBJECT IDENTIFIER algorithm, … }, … }`.
    static func pkcs8AlgorithmOID(_ der: [UInt8]) -> ArraySlice<UInt8>? {
        var reader = DERReader(der[...])
        guard var info = reader.read(tag: 0x30) else { return nil }
        guard info.read(tag: 0x02) != nil else { return nil }
        guard var algorithm = info.read(tag: 0x30) else { return nil }
        return algorithm.readElement(tag: 0x06)
    }
}

/// Reads definite-length DER elements from a slice; returns nil on anything unexpected.
struct DERReader {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
    }

    /// The content of the next element if its tag is `tag`.
    mutating func read(tag: UInt8) -> DERReader? {
        guard let (header, length) = peekHeader(tag: tag) else { return nil }
        let start = bytes.startIndex + header
        let content = bytes[start..<(start + length)]
        bytes = bytes[(start + length)...]
        return DERReader(content)
    }

    /// The whole next element (tag, length and content) if its tag is `tag`.
    mutating func readElement(tag: UInt8) -> ArraySlice<UInt8>? {
        guard let (header, length) = peekHeader(tag: tag) else { return nil }
        let end = bytes.startIndex + header + length
        let element = bytes[bytes.startIndex..<end]
        bytes = bytes[end...]
        return element
    }

    private func peekHeader(tag: UInt8) -> (header: Int, length: Int)? {
        guard bytes.count >= 2, bytes[bytes.startIndex] == tag else { return nil }
        let first = Int(bytes[bytes.startIndex + 1])
        var header = 2
        var length = first
        if first & 0x80 != 0 {
            let count = first & 0x7F
            guard count >= 1, count <= 4, bytes.count >= 2 + count else { return nil }
            length = 0
            for k in 0..<count {
                length = length << 8 | Int(bytes[bytes.startIndex + 2 + k])
            }
            header = 2 + count
        }
        guard length <= bytes.count - header else { return nil }
        return (header, length)
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    func trimmingWhitespace() -> String {
        var scalars = Substring(self).unicodeScalars[...]
        while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        return String(scalars)
    }
}
