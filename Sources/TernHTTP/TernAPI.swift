public import Foundation
public import Hummingbird
public import TernCore
import NIOCore

/// The JSON API and service endpoints on the HTTP listener.
public struct TernAPI: Sendable {
    public var store: any Store
    public var credentials: CredentialDirectory

    public init(store: any Store, credentials: CredentialDirectory) {
        self.store = store
        self.credentials = credentials
    }

    public func buildRouter() -> Router<TernRequestContext> {
        let router = Router(context: TernRequestContext.self)
        router.get("/healthz") { _, _ in HealthResponse(status: "ok") }
        let api = router.group("/api/v1").add(middleware: APIKeyMiddleware(credentials: credentials, store: store))
        api.get("/stats") { request, context in try await stats(request, scope: context.requireScope()) }
        api.get("/messages/:id") { _, context in try await message(context) }
        api.get("/inbound") { request, context in try await inbound(request, scope: context.requireScope()) }
        return router
    }

    /// `GET /api/v1/inbound?limit=N`: what arrived at the MX, newest first, with the state
    /// of each inbound message's posting to its route.
    func inbound(_ request: Request, scope: TenantScope) async throws -> InboundListResponse {
        var limit = 100
        if let text = request.uri.queryParameters.get("limit") {
            guard let value = Int(text), (1...1000).contains(value) else {
                throw HTTPError(.badRequest, message: "'limit' must be a whole number from 1 to 1000")
            }
            limit = value
        }
        return InboundListResponse(messages: try await store.inboundMessages(limit: limit, scope: scope))
    }

    /// `GET /api/v1/messages/ID`: the message's recipients and each one's timeline.
    func message(_ context: TernRequestContext) async throws -> MessageView {
        guard let text = context.parameters.get("id"), let id = MessageID(text) else {
            throw HTTPError(.badRequest, message: "a message id is 16 hexadecimal digits")
        }
        guard let view = try await MessageView.load(id, from: store, scope: try context.requireScope()) else {
            throw HTTPError(.notFound, message: "no message \(text)")
        }
        return view
    }

    /// `GET /api/v1/stats?from=ISO8601&to=ISO8601`: the counters, computed from events.
    func stats(_ request: Request, scope: TenantScope) async throws -> StatsResponse {
        let range = try TimeRange(
            from: request.uri.queryParameters.get("from").map { try ISO8601.parse($0, name: "from") },
            to: request.uri.queryParameters.get("to").map { try ISO8601.parse($0, name: "to") })
        if let from = range.from, let to = range.to, from > to {
            throw HTTPError(.badRequest, message: "'from' must not be after 'to'")
        }
        let counters = try await store.counters(in: range, scope: scope)
        return StatsResponse(counters: counters, range: range)
    }
}

/// The inbound list body.
public struct InboundListResponse: ResponseEncodable, Decodable {
    public var messages: [InboundSummary]
}

struct HealthResponse: ResponseEncodable {
    var status: String
}

/// The stats body: the counters at the top level, and the period they cover.
public struct StatsResponse: ResponseEncodable, Equatable, Decodable {
    public var from: String?
    public var to: String?
    public var counters: Counters

    public init(counters: Counters, range: TimeRange) {
        from = range.from.map { ISO8601.format($0) }
        to = range.to.map { ISO8601.format($0) }
        self.counters = counters
    }

    enum CodingKeys: String, CodingKey {
        case from, to
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        from = try container.decodeIfPresent(String.self, forKey: .from)
        to = try container.decodeIfPresent(String.self, forKey: .to)
        counters = try Counters(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(from, forKey: .from)
        try container.encodeIfPresent(to, forKey: .to)
        try counters.encode(to: encoder)
    }
}

extension TernRequestContext {
    /// The scope the API key check set; a route outside that check sees nothing.
    func requireScope() throws -> TenantScope {
        guard let scope else { throw HTTPError(.unauthorized, message: "missing API key") }
        return scope
    }
}

/// Lets a request through only with `Authorization: Bearer <api key>` of a known credential,
/// and sets the tenants it may see: a tenant key its own tenant; an operator key every tenant,
/// or one with `?tenant=NAME`. 429 with `Retry-After` while failures from the client or for
/// the key id are throttled.
struct APIKeyMiddleware: RouterMiddleware {
    typealias Context = TernRequestContext
    let credentials: CredentialDirectory
    let store: any Store

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "missing API key: send 'Authorization: Bearer <api_key>'")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        let invalid = HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""], message: "invalid API key")
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { throw invalid }
        let client = context.remoteAddress?.ipAddress.flatMap(IPAddress.init)
        switch await credentials.authenticate(apiKey: parts[1].drop(while: { $0 == " " }), client: client) {
        case .authenticated(let credential):
            var context = context
            context.scope = try await scope(of: credential, asking: request.uri.queryParameters.get("tenant"))
            return try await next(request, context)
        case .refused:
            throw invalid
        case .throttled(let refusal):
            if refusal.startsBurst {
                context.logger.warning("API key attempts throttled for \(refusal.retryAfterSeconds) s: too many failures, \(refusal.key)")
            }
            let subject: String
            if case .client(let address) = refusal.key { subject = "from \(address)" } else { subject = "for this API key" }
            throw HTTPError(
                .tooManyRequests, headers: [.retryAfter: "\(refusal.retryAfterSeconds)"],
                message: "too many failed API key attempts \(subject); try again in \(refusal.retryAfterSeconds) s")
        }
    }

    /// A tenant key may name only its own tenant (another name is refused the same way
    /// whether that tenant exists or not); the operator may name any.
    private func scope(of credential: Credential, asking name: String?) async throws -> TenantScope {
        guard let name else { return credential.scope }
        let tenant = try await store.tenant(named: name)
        switch credential.scope {
        case .all:
            guard let tenant else { throw HTTPError(.badRequest, message: "no tenant named '\(name)'") }
            return .tenant(tenant.id)
        case .tenant(let own):
            guard tenant?.id == own else {
                throw HTTPError(.forbidden, message: "a tenant's API key sees only its own tenant; 'tenant' may only name it")
            }
            return .tenant(own)
        }
    }
}

/// ISO 8601 times in query strings: full date-times (with or without fractional seconds) or plain dates (UTC midnight).
public enum ISO8601 {
    public static func parse(_ text: String, name: String) throws -> Date {
        if let date = parse(text) { return date }
        throw HTTPError(.badRequest, message: "'\(name)' is not an ISO 8601 date or date-time: \(text)")
    }

    public static func parse(_ text: String) -> Date? {
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        let dateOnly = ISO8601DateFormatter()
        dateOnly.formatOptions = [.withFullDate]
        return plain.date(from: text) ?? withFraction.date(from: text) ?? dateOnly.date(from: text)
    }

    public static func format(_ date: Date, fractionalSeconds: Bool = false) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = fractionalSeconds ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
