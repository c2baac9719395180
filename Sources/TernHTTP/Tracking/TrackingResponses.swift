import Foundation
import NIOCore
import NIOHTTP1

/// The fast path's responses as bytes, headers in the order `TrackingRoutes` gives them.
struct TrackingResponses {
    private let serverName: String?
    private var dateCache = HTTPDateCache()
    private var second = Int.min
    /// `Date` and `Server` field lines of the current second.
    private var dateAndServer: [UInt8] = []

    init(serverName: String?) {
        self.serverName = serverName
    }

    mutating func response(
        _ answer: TrackingFastPath.Answer, connection: TrackingFastPath.ConnectionHeader, now: Date, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let currentSecond = Int(now.timeIntervalSince1970.rounded(.down))
        if currentSecond != second {
            second = currentSecond
            var lines = "Date: \(dateCache.date(at: now))\r\n"
            if let serverName { lines += "Server: \(serverName)\r\n" }
            dateAndServer = Array(lines.utf8)
        }
        var buffer = allocator.buffer(capacity: 384)
        switch answer {
        case .pixel(let withBody):
            buffer.writeBytes(Self.pixelHead)
            writeEnd(of: connection, into: &buffer)
            if withBody { buffer.writeBytes(TrackingRoutes.pixel) }
        case .redirect(let location):
            buffer.writeStaticString("HTTP/1.1 302 Found\r\nLocation: ")
            buffer.writeString(location)
            buffer.writeStaticString("\r\nCache-Control: no-store\r\nContent-Length: 0\r\n")
            writeEnd(of: connection, into: &buffer)
        case .notFound(let withBody):
            buffer.writeBytes(Self.notFoundHead)
            writeEnd(of: connection, into: &buffer)
            if withBody { buffer.writeString(TrackingFastPath.notFoundText) }
        }
        return buffer
    }

    private func writeEnd(of connection: TrackingFastPath.ConnectionHeader, into buffer: inout ByteBuffer) {
        buffer.writeBytes(dateAndServer)
        switch connection {
        case .none: break
        case .close: buffer.writeStaticString("Connection: close\r\n")
        case .keepAlive: buffer.writeStaticString("Connection: keep-alive\r\n")
        }
        buffer.writeStaticString("\r\n")
    }

    /// Status line and field lines before `Date`, rendered once from the fast path's own headers.
    private static let pixelHead = head("HTTP/1.1 200 OK", TrackingFastPath.pixelHeaders)
    private static let notFoundHead = head("HTTP/1.1 404 Not Found", TrackingFastPath.notFoundHeaders)

    private static func head(_ statusLine: String, _ headers: HTTPHeaders) -> [UInt8] {
        Array((statusLine + "\r\n" + headers.map { "\($0.name): \($0.value)\r\n" }.joined()).utf8)
    }
}

/// The `Date` header value (IMF-fixdate), formatted once a second.
/// - SeeAlso: RFC 9110 §5.6.7
struct HTTPDateCache {
    private var second = Int.min
    private var value = ""

    mutating func date(at date: Date) -> String {
        let now = Int(date.timeIntervalSince1970.rounded(.down))
        if now != second {
            second = now
            value = Self.imfFixdate(secondsSince1970: now)
        }
        return value
    }

    static func imfFixdate(secondsSince1970 seconds: Int) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        let weekday = ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : String(n) }
        return "\(weekdays[weekday]), \(two(day)) \(months[month - 1]) \(year) "
            + "\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60)) GMT"
    }

    private static let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
}
