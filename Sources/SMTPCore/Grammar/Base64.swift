/// Strict base64 (RFC 4648 §4) as used by SASL in SMTP AUTH (RFC 4954 §4): padding required,
/// no whitespace, no other characters.
enum Base64 {
    static func decode<Bytes: Collection>(_ input: Bytes) -> [UInt8]? where Bytes.Element == UInt8 {
        guard input.count % 4 == 0 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(input.count / 4 * 3)
        var quantum: UInt32 = 0
        var filled = 0
        var padding = 0
        for byte in input {
            let value: UInt32
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(byte - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(byte - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(byte - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"): value = 62
            case UInt8(ascii: "/"): value = 63
            case UInt8(ascii: "="):
                padding += 1
                guard padding <= 2 else { return nil }
                value = 0
            default:
                return nil
            }
            if padding > 0 && byte != UInt8(ascii: "=") { return nil } // data after padding
            quantum = quantum << 6 | value
            filled += 1
            if filled == 4 {
                output.append(UInt8(truncatingIfNeeded: quantum >> 16))
                if padding < 2 { output.append(UInt8(truncatingIfNeeded: quantum >> 8)) }
                if padding < 1 { output.append(UInt8(truncatingIfNeeded: quantum)) }
                quantum = 0
                filled = 0
                if padding > 0 { break }
            }
        }
        // Padding may only appear in the final quantum.
        if padding > 0, output.count != (input.count / 4) * 3 - padding { return nil }
        return output
    }
}
