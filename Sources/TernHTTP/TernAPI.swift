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
        router.add(middleware: APIProblemMiddleware(methods: Self.methods))
        router.get("/healthz") { _, _ in HealthResponse(status: "ok") }
        let document = ByteBuffer(string: OpenAPIDocument.json)
        router.get("/api/v1/openapi.json") { request, _ in
            try request.rejectUnknownQueryParameters(accepting: [])
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: document))
        }
        let api = router.group("/api/v1").add(middleware: APIKeyMiddleware(credentials: credentials, store: store))
        api.get("/stats") { request, context in try await stats(request, scope: context.requireScope()) }
        api.get("/messages/:id") { request, context in try await message(request, context) }
        api.get("/inbound") { request, context in try await inbound(request, scope: context.requireScope()) }
        return router
    }

    /// Every API path with its methods, as the OpenAPI document lists them: another method
    /// on one of these paths answers 405.
    static let methods: [(path: String, methods: [HTTPRequest.Method])] = [
        ("/healthz", [.get]), ("/api/v1/openapi.json", [.get]), ("/api/v1/stats", [.get]), ("/api/v1/messages/:id", [.get]),
        ("/api/v1/inbound", [.get]),
    ]

    /// `GET /api/v1/inbound?limit=N`: what arrived at the MX, newest first, with the state
    /// of each inbound message's posting to its route.
    func inbound(_ request: Request, scope: TenantScope) async throws -> InboundListResponse {
        try request.rejectUnknownQueryParameters(accepting: ["tenant", "limit"])
        var limit = 100
        if let text = request.uri.queryParameters.get("limit") {
            guard let value = Int(text) else {
                throw APIError.invalidParameters([
                    .init(field: "limit", code: .notAnInteger, detail: "'limit' must be a whole number from 1 to 1000")
                ])
            }
            guard (1...1000).contains(value) else {
                throw APIError.invalidParameters([.init(field: "limit", code: .outOfRange, detail: "'limit' must be from 1 to 1000")])
            }
            limit = value
        }
        return InboundListResponse(messages: try await store.inboundMessages(limit: limit, scope: scope))
    }

    /// `GET /api/v1/messages/ID`: the message's recipients and each one's timeline.
    func message(_ request: Request, _ context: TernRequestContext) async throws -> MessageView {
        try request.rejectUnknownQueryParameters(accepting: ["tenant"])
        // MessageID alone would also take a leading '+'.
        guard let text = context.parameters.get("id"), text.utf8.count == 16, text.allSatisfy(\.isHexDigit) else {
            throw APIError.invalidParameters([.init(field: "id", code: .invalidID, detail: "a message id is 16 hexadecimal digits")])
        }
        // Well-formed ids that no message can have (zero, past 63 bits) are unknown ones.
        guard let id = MessageID(text), let view = try await MessageView.load(id, from: store, scope: try context.requireScope()) else {
            throw APIError(.notFound, detail: "no message \(text)")
        }
        return view
    }

    /// `GET /api/v1/stats?from=ISO8601&to=ISO8601`: the counters, computed from events.
    func stats(_ request: Request, scope: TenantScope) async throws -> StatsResponse {
        try request.rejectUnknownQueryParameters(accepting: ["tenant", "from", "to"])
        var errors: [APIError.FieldError] = []
        let date = { (name: String) -> Date? in
            guard let text = request.uri.queryParameters.get(name) else { return nil }
            guard let date = ISO8601.parse(text) else {
                errors.append(.init(field: name, code: .invalidDate, detail: "'\(name)' is not an ISO 8601 date or date-time: \(text)"))
                return nil
            }
            return date
        }
        let range = TimeRange(from: date("from"), to: date("to"))
        if let from = range.from, let to = range.to, from > to {
            errors.append(.init(field: "from", code: .afterTo, detail: "'from' must not be after 'to'"))
        }
        guard errors.isEmpty else { throw APIError.invalidParameters(errors) }
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

extension Request {
    /// Refuses query parameters the operation does not document: a misspelt `tenant` must
    /// not quietly widen an operator's view to every tenant.
    func rejectUnknownQueryParameters(accepting names: Set<String>) throws {
        let unknown = Set(uri.queryParameters.map { String($0.key) }).subtracting(names).sorted()
        guard !unknown.isEmpty else { return }
        throw APIError.invalidParameters(
            unknown.map { .init(field: $0, code: .unknownParameter, detail: "'\($0)' is not a parameter of this operation") })
    }
}

extension TernRequestContext {
    /// The scope the API key check set; a route outside that check sees nothing.
    func requireScope() throws -> TenantScope {
        guard let scope else { throw APIError(.missingAPIKey, detail: "missing API key", headers: [.wwwAuthenticate: "Bearer"]) }
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
            throw APIError(
                .missingAPIKey, detail: "missing API key: send 'Authorization: Bearer <api_key>'", headers: [.wwwAuthenticate: "Bearer"])
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        let invalid = APIError(.invalidAPIKey, detail: "invalid API key", headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""])
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
            throw APIError(
                .throttled, detail: "too many failed API key attempts \(subject); try again in \(refusal.retryAfterSeconds) s",
                headers: [.retryAfter: "\(refusal.retryAfterSeconds)"])
        }
    }

    /// A tenant key may name only its own tenant (another name is refused the same way
    /// whether that tenant exists or not); the operator may name any.
    private func scope(of credential: Credential, asking name: String?) async throws -> TenantScope {
        guard let name else { return credential.scope }
        let tenant = try await store.tenant(named: name)
        switch credential.scope {
        case .all:
            guard let tenant else { throw APIError(.unknownTenant, detail: "no tenant named '\(name)'") }
            return .tenant(tenant.id)
        case .tenant(let own):
            guard tenant?.id == own else {
                throw APIError(.forbiddenTenant, detail: "a tenant's API key sees only its own tenant; 'tenant' may only name it")
            }
            return .tenant(own)
        }
    }
}

/// ISO 8601 times in query strings: full date-times (with or without fractional seconds) or plain dates (UTC midnight).
public enum ISO8601 {
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
