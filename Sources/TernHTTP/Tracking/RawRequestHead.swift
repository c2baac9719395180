import NIOCore

/// A request head read by `TrackingFastPath`: only what it answers, and only when it is sure
/// of it.
struct RawRequestHead: Equatable {
    var isHead: Bool
    /// The request target, e.g. `/o/TOKEN?x=1`.
    var target: String
    var http10: Bool
    var userAgent: String?
    /// The connection closes after the response: `Connection: close`, or HTTP/1.0 without
    /// `Connection: keep-alive`.
    var closes: Bool
    /// Octets of the head, its final empty line included.
    var length: Int

    enum Parsed: Equatable {
        case complete(RawRequestHead)
        /// So far it could be one to answer; its end has not arrived.
        case incomplete
        /// Not one to answer here (see `TrackingFastPath`): the decoder's.
        case notOurs
    }

    /// The head at the start of `bytes`.
    static func parse(_ bytes: ByteBufferView) -> Parsed {
        let end = bytes.endIndex
        /// The CR of the line starting at `start`; nil at a bare LF or a NUL (the decoder's
        /// to judge), `end` when the line has not ended yet.
        func lineEnd(from start: Int) -> Int? {
            var position = start
            while position < end {
                switch bytes[position] {
                case UInt8(ascii: "\r"):
                    if position + 1 == end { return end }
                    return bytes[position + 1] == UInt8(ascii: "\n") ? position : nil
                case UInt8(ascii: "\n"), 0:
                    return nil
                default:
                    position += 1
                }
            }
            return end
        }

        // Request line: method SP target SP version. The method and the start of the target
        // decide at once; the rest is read once the line has ended.
        var index = bytes.startIndex
        let isHead: Bool
        switch startsWithOurs(bytes) {
        case false: return .notOurs
        case nil: return .incomplete
        case true: isHead = bytes[index] == UInt8(ascii: "H")
        }
        guard let requestLineEnd = lineEnd(from: index) else { return .notOurs }
        guard requestLineEnd < end else { return .incomplete }
        index += isHead ? 5 : 4
        let targetStart = index
        while index < requestLineEnd, bytes[index] > 0x20, bytes[index] < 0x7F { index += 1 }
        let targetEnd = index
        guard index < requestLineEnd, bytes[index] == UInt8(ascii: " ") else { return .notOurs }
        index += 1
        let http10: Bool
        if requestLineEnd - index == 8, bytes.starts(with: "HTTP/1.1".utf8, at: index) {
            http10 = false
        } else if requestLineEnd - index == 8, bytes.starts(with: "HTTP/1.0".utf8, at: index) {
            http10 = true
        } else {
            return .notOurs
        }
        index = requestLineEnd + 2

        // Field lines, up to the empty line.
        var userAgent: String?
        var close = false
        var keepAlive = false
        while true {
            guard let fieldEnd = lineEnd(from: index) else { return .notOurs }
            guard fieldEnd < end else { return .incomplete }
            if fieldEnd == index { break }  // the empty line
            var nameEnd = index
            while nameEnd < fieldEnd, isTokenCharacter(bytes[nameEnd]) { nameEnd += 1 }
            guard nameEnd > index, nameEnd < fieldEnd, bytes[nameEnd] == UInt8(ascii: ":") else { return .notOurs }
            var valueStart = nameEnd + 1
            var valueEnd = fieldEnd
            while valueStart < valueEnd, bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09 { valueStart += 1 }
            while valueEnd > valueStart, bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09 { valueEnd -= 1 }
            for position in valueStart..<valueEnd where (bytes[position] < 0x20 && bytes[position] != 0x09) || bytes[position] == 0x7F {
                return .notOurs
            }
            let name = bytes[index..<nameEnd]
            if equalsIgnoringCase(name, "user-agent") {
                if userAgent == nil { userAgent = String(decoding: bytes[valueStart..<valueEnd], as: UTF8.self) }
            } else if equalsIgnoringCase(name, "connection") {
                for option in bytes[valueStart..<valueEnd].split(separator: UInt8(ascii: ",")) {
                    let token = option.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }.reversed()
                    if equalsIgnoringCase(token, "close") { close = true }
                    if equalsIgnoringCase(token, "keep-alive") { keepAlive = true }
                }
            } else if equalsIgnoringCase(name, "content-length") || equalsIgnoringCase(name, "transfer-encoding")
                || equalsIgnoringCase(name, "expect") || equalsIgnoringCase(name, "upgrade")
            {
                return .notOurs  // a body, or more than a plain request
            }
            index = fieldEnd + 2
        }
        return .complete(RawRequestHead(
            isHead: isHead, target: String(decoding: bytes[targetStart..<targetEnd], as: UTF8.self), http10: http10,
            userAgent: userAgent, closes: close || (http10 && !keepAlive), length: index + 2 - bytes.startIndex))
    }

    /// Whether `bytes` start as a `GET` or `HEAD` of `/o/` or `/c/` does; nil when too few
    /// have arrived to tell.
    private static func startsWithOurs(_ bytes: ByteBufferView) -> Bool? {
        var undecided = false
        for prefix in ["GET /o/", "GET /c/", "HEAD /o/", "HEAD /c/"] {
            let prefix = prefix.utf8
            let count = min(prefix.count, bytes.count)
            guard bytes.prefix(count).elementsEqual(prefix.prefix(count)) else { continue }
            if count == prefix.count { return true }
            undecided = true
        }
        return undecided ? nil : false
    }

    /// `tchar` (RFC 9110 §5.6.2).
    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// ASCII case-insensitive comparison with a lowercase `name`.
    private static func equalsIgnoringCase(_ bytes: some Collection<UInt8>, _ name: StaticString) -> Bool {
        guard bytes.count == name.utf8CodeUnitCount else { return false }
        return name.withUTF8Buffer { lower in
            zip(bytes, lower).allSatisfy { byte, expected in
                (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte) == expected
            }
        }
    }
}

extension ByteBufferView {
    fileprivate func starts(with prefix: String.UTF8View, at index: Int) -> Bool {
        guard index + prefix.count <= endIndex else { return false }
        return self[index..<(index + prefix.count)].elementsEqual(prefix)
    }
}
