import TernCore

/// Event details as a JSON object with sorted keys, written by hand: the details of every
/// event are encoded on the store's writer, and Foundation's encoder costs more than the
/// insert itself.
/// - SeeAlso: RFC 8259 §7 (strings)
enum DetailsJSON {
    static func encode(_ details: [String: String]) -> String {
        var output: [UInt8] = []
        encode(details, into: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// Replaces `output`'s contents with the JSON object, keeping its capacity. (Engagement
    /// events, which the writer encodes a batch at a time, go through the `EngagementDetails`
    /// form below.)
    static func encode(_ details: [String: String], into output: inout [UInt8]) {
        // The pairs sorted once, rather than the keys sorted and each looked up again.
        let pairs = details.sorted { $0.key < $1.key }
        output.removeAll(keepingCapacity: true)
        output.reserveCapacity(pairs.reduce(2) { $0 + $1.key.utf8.count + $1.value.utf8.count + 6 })
        output.append(UInt8(ascii: "{"))
        for (index, pair) in pairs.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            append(pair.key, to: &output)
            output.append(UInt8(ascii: ":"))
            append(pair.value, to: &output)
        }
        output.append(UInt8(ascii: "}"))
    }

    /// Replaces `output`'s contents with the JSON object of an engagement event's details,
    /// keeping its capacity. The fields come in key order, so the keys are sorted as in
    /// `encode(_:)`'s objects without sorting.
    static func encode(_ details: EngagementDetails, into output: inout [UInt8]) {
        output.removeAll(keepingCapacity: true)
        output.append(UInt8(ascii: "{"))
        details.forEachField { key, value in
            if output.count > 1 { output.append(UInt8(ascii: ",")) }
            output.append(UInt8(ascii: "\""))
            key.withUTF8Buffer { output.append(contentsOf: $0) }
            output.append(UInt8(ascii: "\""))
            output.append(UInt8(ascii: ":"))
            append(value, to: &output)
        }
        output.append(UInt8(ascii: "}"))
    }

    private static let hex = Array("0123456789abcdef".utf8)

    private static func append(_ string: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { bytes in
            // Runs that need no escape (nearly all of a URL or a user agent) are copied whole.
            var runStart = 0
            for (index, byte) in bytes.enumerated() where byte < 0x20 || byte == 0x7F || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                runStart = index + 1
                switch byte {
                case UInt8(ascii: "\""): output += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
                case UInt8(ascii: "\\"): output += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
                case UInt8(ascii: "\n"): output += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
                case UInt8(ascii: "\r"): output += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
                case UInt8(ascii: "\t"): output += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
                default:
                    output += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
                }
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
        }
        output.append(UInt8(ascii: "\""))
    }
}
