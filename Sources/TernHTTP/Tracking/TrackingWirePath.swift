import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import TernCore

/// Answers opens and clicks on links held in memory straight from the connection's bytes,
/// before NIO's HTTP/1 decoder, with the whole response written as one buffer: no parser
/// callbacks, no request head, no header dictionary and no encoder per request. Measured on
/// 2 cores with `Benchmarks/tracking-http.sh`: 15–20% more opens and clicks per second.
///
/// It reads only a strict subset of HTTP/1.1 (RFC 9112): `GET` or `HEAD` of `/o/…` or
/// `/c/…`, HTTP/1.0 or 1.1, CRLF line ends, well-formed field lines, and no body (no
/// `Content-Length`, `Transfer-Encoding`, `Expect` or `Upgrade`). At the first request it
/// does not answer itself (anything else, or anything it is unsure of) it hands that
/// request and every byte after it, for the rest of the connection, to the decoder, where
/// `TrackingFastPath` and Hummingbird answer as before. Every request it answered was
/// answered before that, so responses keep the order of their requests.
///
/// `TrackingFastPath.Installer` puts it in front of NIO's HTTP/1 handlers.
final class TrackingWirePath: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Mode {
        /// Requests are read here.
        case reading
        /// Everything goes to the decoder.
        case handingOn
        /// A response that closes the connection was written: the rest is ignored.
        case closed
    }

    private let routes: TrackingRoutes
    private var mode = Mode.reading
    /// Bytes of a request head not complete yet.
    private var partial: ByteBuffer?
    private var needsFlush = false
    private var responses: TrackingResponses
    /// The client's address, read once per connection.
    private var clientIP: String??

    /// A request head longer than this is left to the decoder (and its limits).
    static let maxHeadLength = 8192

    init(routes: TrackingRoutes, serverName: String?) {
        self.routes = routes
        self.responses = TrackingResponses(serverName: serverName)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch mode {
        case .handingOn:
            context.fireChannelRead(data)
            return
        case .closed:
            return
        case .reading:
            break
        }
        var input = unwrapInboundIn(data)
        if var partial = partial.take() {
            partial.writeBuffer(&input)
            input = partial
        }
        while input.readableBytes > 0 {
            let head: RawRequestHead
            switch RawRequestHead.parse(input.readableBytesView) {
            case .complete(let complete):
                head = complete
            case .incomplete where input.readableBytes < Self.maxHeadLength:
                partial = input  // wait for the rest of the head
                return
            case .incomplete, .notOurs:
                handOn(input, context: context)
                return
            }
            guard let answer = answer(head, context: context) else {
                handOn(input, context: context)
                return
            }
            input.moveReaderIndex(forwardBy: head.length)
            let connection = TrackingFastPath.ConnectionHeader(closes: head.closes, http10: head.http10)
            write(answer, connection: connection, context: context)
            if connection == .close { return }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Bytes of a head that never completed go to the decoder, which reports them as it would have.
        if mode == .reading, let partial = partial.take() {
            mode = .handingOn
            context.fireChannelRead(wrapInboundOut(partial))
        }
        context.fireChannelInactive()
    }

    /// From here on the decoder reads this connection, starting with `input`.
    private func handOn(_ input: ByteBuffer, context: ChannelHandlerContext) {
        mode = .handingOn
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelRead(wrapInboundOut(input))
    }

    private func answer(_ head: RawRequestHead, context: ChannelHandlerContext) -> TrackingFastPath.Answer? {
        TrackingFastPath.answer(
            routes: routes, method: head.isHead ? .head : .get, target: head.target,
            userAgent: head.userAgent, clientIP: clientIP(context))
    }

    private func clientIP(_ context: ChannelHandlerContext) -> String? {
        if let clientIP { return clientIP }
        let ip = context.channel.remoteAddress?.ipAddress
        clientIP = .some(ip)
        return ip
    }

    private func write(_ answer: TrackingFastPath.Answer, connection: TrackingFastPath.ConnectionHeader, context: ChannelHandlerContext) {
        let response = responses.response(answer, connection: connection, now: Date(), allocator: context.channel.allocator)
        if connection == .close {
            mode = .closed
            let channel = context.channel
            needsFlush = false
            context.writeAndFlush(wrapOutboundOut(response)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.write(wrapOutboundOut(response), promise: nil)
            needsFlush = true
        }
    }
}

@available(*, unavailable)
extension TrackingWirePath: Sendable {}

/// The responses of the fast paths as bytes, headers in the order `TrackingFastPath` writes them.
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

/// A request head read by `TrackingWirePath`: only what it answers, and only when it is sure
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
        /// Not one to answer here (see `TrackingWirePath`): the decoder's.
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
