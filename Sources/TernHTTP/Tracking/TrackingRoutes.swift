public import Foundation
public import Hummingbird
import NIOCore
public import TernCore

/// The tracking endpoints under `http.public_url`: the open pixel (`/o/TOKEN`), click
/// redirects (`/c/TOKEN`) and unsubscribe links (`/u/TOKEN`, RFC 8058 one-click POST).
///
/// Tokens are verified with the server's keys alone; nothing from a request that fails
/// verification is used, so there is no open redirect: a bad token is a 404. Opens and
/// clicks answer without waiting for the store (the events are written in batches); a
/// click reads its message's links from memory, or once from the store.
public final class TrackingRoutes: Sendable {
    public let keys: TrackingKeys
    public let classifier: EngagementClassifier
    public let recorder: EngagementRecorder
    public let links: LinkTable
    public let store: any EngagementStore
    let now: @Sendable () -> Date

    public init(
        keys: TrackingKeys, classifier: EngagementClassifier, recorder: EngagementRecorder, links: LinkTable,
        store: any EngagementStore, now: @escaping @Sendable () -> Date = Date.init
    ) {
        self.keys = keys
        self.classifier = classifier
        self.recorder = recorder
        self.links = links
        self.store = store
        self.now = now
    }

    public func add(to router: Router<TernRequestContext>) {
        for method in [HTTPRequest.Method.get, .head] {
            router.on("/o/:token", method: method) { request, context in try self.open(request, context) }
            router.on("/c/:token", method: method) { request, context in try await self.click(request, context) }
        }
        router.get("/u/:token") { request, context in try await self.unsubscribePage(request, context) }
        router.post("/u/:token") { request, context in try await self.unsubscribe(request, context) }
    }

    // MARK: Endpoints

    func open(_ request: Request, _ context: TernRequestContext) throws -> Response {
        let token = try verified(.open, context)
        recorder.record(engagement(
            .open, token, method: request.method, userAgent: request.headers[.userAgent], clientIP: context.remoteAddress?.ipAddress,
            at: now()))
        return Response(status: .ok, headers: Self.pixelHeaders, body: ResponseBody(byteBuffer: ByteBuffer(bytes: Self.pixel)))
    }

    func click(_ request: Request, _ context: TernRequestContext) async throws -> Response {
        let token = try verified(.click, context)
        guard let target = try await links.target(of: token.messageID, index: token.linkIndex) else {
            throw HTTPError(.notFound, message: "This link is not known.")
        }
        recorder.record(engagement(
            .click, token, method: request.method, userAgent: request.headers[.userAgent], clientIP: context.remoteAddress?.ipAddress,
            at: now(), target: target))
        return Response(status: .found, headers: [.location: Self.locationValue(target), .cacheControl: "no-store"])
    }

    /// The page an unsubscribe link opens: it names the address and asks to confirm. A GET
    /// changes nothing, because mail scanners fetch links before people do.
    func unsubscribePage(_ request: Request, _ context: TernRequestContext) async throws -> Response {
        let token = try verified(.unsubscribe, context)
        guard let recipient = try await store.recipientSummary(token.recipientID), recipient.messageID == token.messageID else {
            throw HTTPError(.notFound, message: "This link is not known.")
        }
        let sender = recipient.fromDomain.isEmpty ? "this sender" : Self.escaped(recipient.fromDomain)
        return Self.page(
            title: "Unsubscribe",
            body: """
                <p>Stop mail from \(sender) to <strong>\(Self.escaped(recipient.address))</strong>?</p>
                <form method="post" action="\(Self.escaped(request.uri.path))">
                <input type="hidden" name="List-Unsubscribe" value="One-Click">
                <button type="submit">Unsubscribe</button>
                </form>
                """)
    }

    /// RFC 8058 one-click (`List-Unsubscribe=One-Click`) and the page's button: the address goes
    /// on the suppression list for the sending domain. Repeating it changes nothing more.
    func unsubscribe(_ request: Request, _ context: TernRequestContext) async throws -> Response {
        let token = try verified(.unsubscribe, context)
        let body = try await request.body.collect(upTo: Self.maxFormSize)
        let oneClick = String(buffer: body).contains("List-Unsubscribe=One-Click")
        let userAgent = request.headers[.userAgent]
        let details = EngagementDetails(
            method: oneClick ? "one-click" : "page", ip: context.remoteAddress?.ipAddress,
            userAgent: userAgent.map { String($0.prefix(Self.maxUserAgentLength)) })
        recorder.record(EngagementEvent(type: .unsubscribe, messageID: token.messageID, recipientID: token.recipientID, at: now(), details: details))
        return Self.page(title: "Unsubscribed", body: "<p>You are unsubscribed. You will not get this mail again.</p>")
    }

    // MARK: Helpers

    /// A one-click POST body is a short form; anything bigger is not one.
    static let maxFormSize = 4096
    /// User agents are kept up to this length in events.
    static let maxUserAgentLength = 512
    /// Opens and clicks sooner than this after a message was accepted are not timed (the
    /// clock of another node may be a little off).
    static let maxClockSkew: TimeInterval = 5

    private func verified(_ kind: TrackingTokenKind, _ context: TernRequestContext) throws -> TrackingToken {
        guard let text = context.parameters.get("token"), let token = verified(kind, text) else {
            throw HTTPError(.notFound, message: "This link is not known.")
        }
        return token
    }

    // MARK: Shared with TrackingFastPath
    // Both ways of answering an open or a click (these routes, and the event-loop fast path)
    // verify, classify and build the event here, so that they cannot drift apart.

    /// The token in a request path, when it verifies with our keys and is of `kind`.
    func verified(_ kind: TrackingTokenKind, _ text: some StringProtocol) -> TrackingToken? {
        guard let token = keys.verify(text), token.kind == kind else { return nil }
        return token
    }

    /// The event an open (`target` nil) or a click on `target` records, classified as human or machine.
    func engagement(
        _ kind: EngagementKind, _ token: TrackingToken, method: HTTPRequest.Method, userAgent: String?, clientIP ip: String?,
        at: Date, target: String? = nil
    ) -> EngagementEvent {
        let userAgent = userAgent.map { String($0.prefix(Self.maxUserAgentLength)) }
        let verdict = classifier.classify(EngagementRequest(
            kind: kind, method: method.rawValue, userAgent: userAgent, clientIP: ip.flatMap(IPAddress.init),
            secondsSinceDelivery: secondsSinceAcceptance(of: token.messageID, at: at)))
        let details = EngagementDetails(
            machine: verdict.machine, reason: verdict.reason, url: target, link: target == nil ? nil : token.linkIndex,
            method: method == .head ? "HEAD" : nil, ip: ip, userAgent: userAgent)
        let type: EventType = kind == .open ? .open : .click
        return EngagementEvent(type: type, messageID: token.messageID, recipientID: token.recipientID, at: at, details: details)
    }

    /// Time since the message was accepted, read from its time-ordered id: a bound on the
    /// time since delivery that needs no lookup. nil for ids that carry no plausible time.
    func secondsSinceAcceptance(of message: MessageID, at date: Date) -> Double? {
        let accepted = TimeOrderedID.date(of: message.rawValue)
        let seconds = date.timeIntervalSince(accepted)
        guard message.rawValue > 0, seconds > -Self.maxClockSkew, seconds < 10 * 365 * 86_400 else { return nil }
        return max(0, seconds)
    }

    /// The link as a `Location` value: octets a URI may not hold as they are (controls, space,
    /// non-ASCII, `"<>\^`{|}`) percent-encoded, so that nothing in a link can end the header.
    /// - SeeAlso: RFC 3986 §2.1, RFC 9110 §10.2.2
    static func locationValue(_ url: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(url.utf8.count)
        for byte in url.utf8 {
            switch byte {
            case 0x21, 0x23...0x3B, 0x3D, 0x3F...0x5B, 0x5D, 0x5F, 0x61...0x7A, 0x7E:
                bytes.append(byte)
            default:
                bytes += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A transparent 1×1 GIF (43 bytes).
    static let pixel: [UInt8] = [
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0xFF, 0xFF, 0xFF,
        0x00, 0x00, 0x00, 0x21, 0xF9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2C, 0x00, 0x00, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3B,
    ]

    static let pixelHeaders: HTTPFields = [
        .contentType: "image/gif",
        .cacheControl: "no-cache, no-store, must-revalidate, private, max-age=0",
        .init("Pragma")!: "no-cache",
        .expires: "0",
    ]

    static func page(title: String, body: String) -> Response {
        let html = """
            <!doctype html>
            <html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
            <meta name="robots" content="noindex"><title>\(title)</title></head>
            <body style="font-family:sans-serif;max-width:32em;margin:3em auto">\(body)</body></html>
            """
        return Response(
            status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    static func escaped(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }
}
