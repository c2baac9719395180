import Foundation
public import HTTPTypes
public import Hummingbird
import NIOCore

/// An error of the JSON API, answered as an RFC 9457 problem document with a stable `code`.
/// Codes map to HTTP statuses here and nowhere else.
/// - SeeAlso: RFC 9457 §3
public struct APIError: HTTPResponseError, Sendable {
    /// A stable, machine-readable kind of problem (the `code` member); new ones may be added.
    public struct Code: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let missingAPIKey = Code(rawValue: "missing_api_key")
        public static let invalidAPIKey = Code(rawValue: "invalid_api_key")
        public static let throttled = Code(rawValue: "throttled")
        public static let forbiddenTenant = Code(rawValue: "forbidden_tenant")
        public static let unknownTenant = Code(rawValue: "unknown_tenant")
        public static let invalidParameter = Code(rawValue: "invalid_parameter")
        /// A request Hummingbird could not read (a bad body, say); no parameter to blame.
        public static let invalidRequest = Code(rawValue: "invalid_request")
        public static let notFound = Code(rawValue: "not_found")
        public static let methodNotAllowed = Code(rawValue: "method_not_allowed")
        public static let internalError = Code(rawValue: "internal_error")

        /// Every code the API answers with (the OpenAPI document lists the same).
        public static let all: [Code] = [
            .missingAPIKey, .invalidAPIKey, .throttled, .forbiddenTenant, .unknownTenant, .invalidParameter, .invalidRequest,
            .notFound, .methodNotAllowed, .internalError,
        ]

        /// The one place a code becomes a status.
        public var status: HTTPResponse.Status {
            switch self {
            case .missingAPIKey, .invalidAPIKey: .unauthorized
            case .throttled: .tooManyRequests
            case .forbiddenTenant: .forbidden
            case .unknownTenant, .invalidParameter, .invalidRequest: .badRequest
            case .notFound: .notFound
            case .methodNotAllowed: .methodNotAllowed
            default: .internalServerError
            }
        }
    }

    /// One offending query or path value of an `invalid_parameter` problem.
    public struct FieldError: Codable, Equatable, Sendable {
        public struct Code: RawRepresentable, Hashable, Sendable, Codable {
            public var rawValue: String
            public init(rawValue: String) { self.rawValue = rawValue }

            public static let unknownParameter = Code(rawValue: "unknown_parameter")
            public static let notAnInteger = Code(rawValue: "not_an_integer")
            public static let outOfRange = Code(rawValue: "out_of_range")
            public static let invalidDate = Code(rawValue: "invalid_date")
            public static let invalidID = Code(rawValue: "invalid_id")
            public static let afterTo = Code(rawValue: "after_to")

            public static let all: [Code] = [.unknownParameter, .notAnInteger, .outOfRange, .invalidDate, .invalidID, .afterTo]
        }

        public var field: String
        public var code: Code
        public var detail: String

        public init(field: String, code: Code, detail: String) {
            self.field = field
            self.code = code
            self.detail = detail
        }
    }

    public var code: Code
    public var detail: String
    public var errors: [FieldError]
    /// Headers the status needs (`WWW-Authenticate`, `Retry-After`).
    public var headers: HTTPFields

    public init(_ code: Code, detail: String, errors: [FieldError] = [], headers: HTTPFields = [:]) {
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers
    }

    /// An `invalid_parameter` problem listing `errors`.
    public static func invalidParameters(_ errors: [FieldError]) -> APIError {
        let detail =
            errors.count == 1
            ? errors[0].detail : "\(errors.count) parameters are invalid: " + errors.map(\.field).joined(separator: ", ")
        return APIError(.invalidParameter, detail: detail, errors: errors)
    }

    public var status: HTTPResponse.Status { code.status }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let problem = Problem(
            title: status.reasonPhrase, status: status.code, detail: detail, instance: request.uri.path, code: code,
            errors: errors.isEmpty ? nil : errors)
        var headers = self.headers
        headers[.contentType] = Problem.mediaType
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: problem.encoded())))
    }
}

/// The body of every API error: RFC 9457's members plus Tern's `code` and `errors`.
/// - SeeAlso: RFC 9457 §3.1
public struct Problem: Codable, Equatable, Sendable {
    public static let mediaType = "application/problem+json"

    /// `about:blank`: the kind of problem is told by `status` and `code`.
    public var type: String = "about:blank"
    public var title: String
    public var status: Int
    public var detail: String
    public var instance: String?
    public var code: APIError.Code
    public var errors: [APIError.FieldError]?

    public init(title: String, status: Int, detail: String, instance: String?, code: APIError.Code, errors: [APIError.FieldError]?) {
        self.title = title
        self.status = status
        self.detail = detail
        self.instance = instance
        self.code = code
        self.errors = errors
    }

    func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding strings and integers cannot fail.
        return (try? encoder.encode(self))
            ?? Data(#"{"type":"about:blank","title":"Internal Server Error","status":500,"detail":"","code":"internal_error"}"#.utf8)
    }
}

/// Answers every error on `/api/` paths as a problem document: Hummingbird's own (no such
/// route; 405 with `Allow` for a known path asked with another method) and unexpected ones
/// (500, without the error's text). Other paths, such as tracking, keep their errors.
struct APIProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The API's paths (`:name` matches one segment) and the methods each has.
    let methods: [(path: String, methods: [HTTPRequest.Method])]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path.hasPrefix("/api/") || methods.contains(where: { $0.path == path }) else { return try await next(request, context) }
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as any HTTPResponseError {
            switch error.status {
            case .notFound:
                if let allowed = methods.first(where: { Self.matches(template: $0.path, path: path) })?.methods,
                    !allowed.contains(request.method)
                {
                    // RFC 9110 §15.5.6
                    let allow = allowed.map(\.rawValue).joined(separator: ", ")
                    throw APIError(
                        .methodNotAllowed, detail: "\(request.method.rawValue) is not allowed here; use \(allow)", headers: [.allow: allow])
                }
                throw APIError(.notFound, detail: "no such API path: \(path)")
            case .badRequest:
                throw APIError(.invalidRequest, detail: (error as? HTTPError)?.body ?? "the request could not be read")
            default:
                throw internalError(error, context: context)
            }
        } catch {
            throw internalError(error, context: context)
        }
    }

    static func matches(template: String, path: String) -> Bool {
        let want = template.split(separator: "/", omittingEmptySubsequences: false)
        let have = path.split(separator: "/", omittingEmptySubsequences: false)
        guard want.count == have.count else { return false }
        return zip(want, have).allSatisfy { want, have in want.hasPrefix(":") ? !have.isEmpty : want == have }
    }

    private func internalError(_ error: any Error, context: Context) -> APIError {
        context.logger.error("API request failed: \(String(reflecting: error))")
        return APIError(.internalError, detail: "the request failed on the server; the log has the cause")
    }
}
