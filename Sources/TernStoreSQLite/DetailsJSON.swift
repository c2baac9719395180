/// Event details as a JSON object with sorted keys, written by hand: the details of every
/// event are encoded on the store's writer, and Foundation's encoder costs more than the
/// insert itself.
/// - SeeAlso: RFC 8259 §7 (strings)
enum DetailsJSON {
    static func encode(_ details: [String: String]) -> String {
        var output: [UInt8] = [UInt8(ascii: "{")]
        output.reserveCapacity(details.reduce(2) { $0 + $1.key.utf8.count + $1.value.utf8.count + 6 })
        for (index, key) in details.keys.sorted().enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            append(key, to: &output)
            output.append(UInt8(ascii: ":"))
            append(details[key] ?? "", to: &output)
        }
        output.append(UInt8(ascii: "}"))
        return String(decoding: output, as: UTF8.self)
    }

    private static let hex = Array("0123456789abcdef".utf8)

    private static func append(_ string: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): output += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\n"): output += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): output += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case UInt8(ascii: "\t"): output += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20, 0x7F:
                output += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            default:
                output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
