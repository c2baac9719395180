import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import TernCore
import TernHTTP
import TernStoreSQLite

@Suite struct TernAPITests {
    struct Fixture {
        var store: SQLiteStore
        /// The default tenant's key.
        var apiKey: String
        /// Tenant `b`'s key, and the id of `b`'s one message.
        var otherKey: String
        var otherMessage: MessageID
        var operatorKey: String
        var folder: String
    }

    func withAPI(_ body: @escaping @Sendable (any TestClientProtocol, Fixture) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tern-http-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: folder + "/tern.sqlite")
        let hasher = SecretHasher(rounds: 1 << 10)
        let (credential, issued) = try Credential.issue(name: "app", networks: [], hasher: hasher)
        try await store.addCredential(credential)
        let b = try await store.addTenant(named: "b", limits: .none, createdAt: Date())
        let (otherCredential, otherIssued) = try Credential.issue(name: "b-app", networks: [], scope: .tenant(b.id), hasher: hasher)
        try await store.addCredential(otherCredential)
        let (operatorCredential, operatorIssued) = try Credential.issue(name: "ops", networks: [], scope: .all, hasher: hasher)
        try await store.addCredential(operatorCredential)
        let base = Date(timeIntervalSince1970: 1_800_000_000)
        let otherMessage = QueuedMessage(
            id: .random(), messageIDHeader: "<b@t>", mailFrom: "a@b.test", recipients: [QueuedRecipient(id: .random(), address: "e@y.test")],
            content: Array("\r\n".utf8), credential: "b-app", clientIP: nil, receivedAt: base, eightBitMIME: false, smtpUTF8: false,
            tenant: b.id)
        try await store.commitAndWait([otherMessage])
        try await store.commitAndWait([
            QueuedMessage(
                id: .random(), messageIDHeader: "<1@t>", mailFrom: "a@x.test",
                recipients: [QueuedRecipient(id: .random(), address: "b@y.test"), QueuedRecipient(id: .random(), address: "c@y.test")],
                content: Array("\r\n".utf8), credential: "app", clientIP: nil, receivedAt: base, eightBitMIME: false, smtpUTF8: false),
            QueuedMessage(
                id: .random(), messageIDHeader: "<2@t>", mailFrom: "a@x.test",
                recipients: [QueuedRecipient(id: .random(), address: "d@y.test")],
                content: Array("\r\n".utf8), credential: "app", clientIP: nil, receivedAt: base.addingTimeInterval(86_400),
                eightBitMIME: false, smtpUTF8: false),
        ])
        let api = TernAPI(store: store, credentials: CredentialDirectory(store: store))
        let app = Application(router: api.buildRouter())
        try await app.test(.router) { client in
            try await body(
                client,
                Fixture(
                    store: store, apiKey: issued.apiKey, otherKey: otherIssued.apiKey, otherMessage: otherMessage.id,
                    operatorKey: operatorIssued.apiKey, folder: folder))
        }
        try await store.close()
    }

    @Test func healthNeedsNoKey() async throws {
        try await withAPI { client, _ in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("\"ok\""))
            }
        }
    }

    @Test func statsAllTime() async throws {
        try await withAPI { client, fixture in
            try await client.execute(uri: "/api/v1/stats", method: .get, headers: [.authorization: "Bearer \(fixture.apiKey)"]) { response in
                #expect(response.status == .ok)
                let stats = try JSONDecoder().decode(StatsResponse.self, from: Data(buffer: response.body))
                #expect(stats.counters == Counters(outbound: 3))
                #expect(stats.from == nil && stats.to == nil)
                // Every counter is at the top level, under its snake_case name.
                let object = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                #expect(Set(object?.keys.map { $0 } ?? []) == Set(Counters.names))
            }
        }
    }

    @Test(arguments: [
        ("from=2027-01-15T08:00:00Z", 3),
        ("from=2027-01-15T08:00:01Z", 1),
        ("to=2027-01-15T08:00:00Z", 0),
        ("to=2027-01-15T08:00:01Z", 2),
        ("from=2027-01-15&to=2027-01-16T12:00:00.000Z", 3),
        ("from=2027-01-16&to=2027-01-16T12:00:00.000Z", 1),
        ("from=2020-01-01T00:00:00%2B02:00", 3),
        ("from=2030-01-01T00:00:00Z", 0),
    ])
    func statsInAPeriod(query: String, outbound: Int) async throws {
        try await withAPI { client, fixture in
            try await client.execute(uri: "/api/v1/stats?\(query)", method: .get, headers: [.authorization: "Bearer \(fixture.apiKey)"]) { response in
                #expect(response.status == .ok)
                let stats = try JSONDecoder().decode(StatsResponse.self, from: Data(buffer: response.body))
                #expect(stats.counters.outbound == outbound)
            }
        }
    }

    @Test(arguments: [
        ("from=yesterday", ["from": "invalid_date"]),
        ("to=2027-13-45", ["to": "invalid_date"]),
        ("from=x&to=y", ["from": "invalid_date", "to": "invalid_date"]),
        ("from=2027-02-01&to=2027-01-01", ["from": "after_to"]),
        ("form=2027-02-01", ["form": "unknown_parameter"]),
        ("tenat=b&limit=1", ["tenat": "unknown_parameter", "limit": "unknown_parameter"]),
    ])
    func badStatsQueryIs400WithTheFields(query: String, fields: [String: String]) async throws {
        try await withAPI { client, fixture in
            try await client.execute(uri: "/api/v1/stats?\(query)", method: .get, headers: [.authorization: "Bearer \(fixture.apiKey)"]) { response in
                let problem = try Self.problem(response, .badRequest, code: .invalidParameter)
                #expect(Dictionary(uniqueKeysWithValues: (problem.errors ?? []).map { ($0.field, $0.code.rawValue) }) == fields)
            }
        }
    }

    @Test(arguments: [
        (nil as String?, "missing_api_key"), ("Bearer", "invalid_api_key"), ("Bearer nonsense", "invalid_api_key"),
        ("Basic dXNlcjpwYXNz", "invalid_api_key"), ("Bearer tern_AAAAAAAAAAAA_0123456789abcdefABCD", "invalid_api_key"),
    ])
    func missingOrBadKeyIs401(header: String?, code: String) async throws {
        try await withAPI { client, _ in
            var headers = HTTPFields()
            if let header { headers[.authorization] = header }
            try await client.execute(uri: "/api/v1/stats", method: .get, headers: headers) { response in
                _ = try Self.problem(response, .unauthorized, code: .init(rawValue: code))
                #expect(response.headers[.wwwAuthenticate] != nil)
            }
        }
    }

    @Test(arguments: ["xyz", "+000000000000001", "-000000000000001", "0123456789abcdef0", "０123456789abcdef"])
    func badMessageIDIs400(id: String) async throws {
        try await withAPI { client, fixture in
            try await client.execute(uri: "/api/v1/messages/\(id)", method: .get, headers: [.authorization: "Bearer \(fixture.apiKey)"]) { response in
                let problem = try Self.problem(response, .badRequest, code: .invalidParameter)
                #expect(problem.errors?.map(\.field) == ["id"] && problem.errors?.first?.code == .invalidID)
            }
        }
    }

    /// Well-formed ids that no message can have answer as unknown ones.
    @Test(arguments: ["0000000000000000", "ffffffffffffffff", "8000000000000000"])
    func impossibleMessageIDIs404(id: String) async throws {
        try await withAPI { client, fixture in
            try await client.execute(uri: "/api/v1/messages/\(id)", method: .get, headers: [.authorization: "Bearer \(fixture.apiKey)"]) { response in
                _ = try Self.problem(response, .notFound, code: .notFound)
            }
        }
    }

    /// Hummingbird's own 404 on API paths is a problem too.
    @Test(arguments: ["/api/v1/nosuch", "/api/v2/stats", "/api/v1/messages"])
    func unknownAPIPathIsAProblem(path: String) async throws {
        try await withAPI { client, fixture in
            try await client.execute(uri: path, method: .get, headers: [.authorization: "Bearer \(fixture.apiKey)"]) { response in
                let problem = try Self.problem(response, .notFound, code: .notFound)
                #expect(problem.instance == path)
            }
        }
    }

    @Test(arguments: [("/api/v1/stats", HTTPRequest.Method.post), ("/api/v1/messages/0123456789abcdef", .delete), ("/api/v1/openapi.json", .put), ("/healthz", .trace),
        ("/api/v1/inbound", HTTPRequest.Method("QUERY")!)])
    func otherMethodIs405WithAllow(path: String, method: HTTPRequest.Method) async throws {
        try await withAPI { client, _ in
            try await client.execute(uri: path, method: method) { response in
                _ = try Self.problem(response, .methodNotAllowed, code: .methodNotAllowed)
                #expect(response.headers[.allow] == "GET")
            }
        }
    }

    /// Checks the status, the media type and the code of a problem response, and decodes it.
    static func problem(_ response: TestResponse, _ status: HTTPResponse.Status, code: APIError.Code) throws -> Problem {
        #expect(response.status == status)
        #expect(response.headers[.contentType] == "application/problem+json")
        let problem = try JSONDecoder().decode(Problem.self, from: Data(buffer: response.body))
        #expect(problem.status == status.code && problem.title == status.reasonPhrase && problem.type == "about:blank")
        #expect(problem.code == code, "\(String(buffer: response.body))")
        #expect(!problem.detail.isEmpty)
        return problem
    }

    @Test func inboundListsArrivalsNewestFirst() async throws {
        try await withAPI { client, fixture in
            let at = Date(timeIntervalSince1970: 1_800_000_000)
            let first = InboundMessage(
                id: .next(), receivedAt: at, clientIP: "192.0.2.1", heloName: "mx.example", mailFrom: "",
                recipients: ["postmaster@bounces.x.test"], purpose: .report, webhookURL: nil, content: Array("a\r\n".utf8))
            let second = InboundMessage(
                id: .next(), receivedAt: at, clientIP: "192.0.2.1", heloName: "mx.example", mailFrom: "user@y.test",
                recipients: ["help@in.test"], purpose: .inbound, webhookURL: "https://app.test/hook", content: Array("b\r\n".utf8),
                tenant: .default)
            try await fixture.store.commitInbound([first, second])
            // The operator sees every arrival, reports (which belong to no tenant) included.
            let auth: HTTPFields = [.authorization: "Bearer \(fixture.operatorKey)"]
            try await client.execute(uri: "/api/v1/inbound", method: .get, headers: auth) { response in
                #expect(response.status == .ok)
                let body = try JSONDecoder.iso8601.decode(InboundListResponse.self, from: Data(buffer: response.body))
                #expect(body.messages.map(\.id) == [second.id.description, first.id.description])
                #expect(body.messages.map(\.kind) == ["inbound", nil])
                #expect(body.messages[0].webhook?.url == "https://app.test/hook" && body.messages[0].webhook?.state == "pending")
                #expect(body.messages[0].receivedAt == at)
            }
            try await client.execute(uri: "/api/v1/inbound?limit=1", method: .get, headers: auth) { response in
                let body = try JSONDecoder.iso8601.decode(InboundListResponse.self, from: Data(buffer: response.body))
                #expect(body.messages.map(\.id) == [second.id.description])
            }
            for (bad, code) in [("0", "out_of_range"), ("1001", "out_of_range"), ("x", "not_an_integer"), ("", "not_an_integer")] {
                try await client.execute(uri: "/api/v1/inbound?limit=\(bad)", method: .get, headers: auth) { response in
                    let problem = try Self.problem(response, .badRequest, code: .invalidParameter)
                    #expect(problem.errors == [.init(field: "limit", code: .init(rawValue: code), detail: problem.errors?.first?.detail ?? "")])
                }
            }
            try await client.execute(uri: "/api/v1/inbound", method: .get) { response in
                _ = try Self.problem(response, .unauthorized, code: .missingAPIKey)
            }
        }
    }

    /// Every API path, asked with one tenant's key for another tenant's data: the answer is
    /// the one an unknown id gets, or only the asker's own data.
    @Test func aTenantKeySeesOnlyItsTenant() async throws {
        try await withAPI { client, fixture in
            let at = Date(timeIntervalSince1970: 1_800_000_000)
            let ownInbound = InboundMessage(
                id: .next(), receivedAt: at, clientIP: nil, heloName: "mx", mailFrom: "u@y.test", recipients: ["help@in.test"],
                purpose: .inbound, webhookURL: nil, content: Array("a\r\n".utf8), tenant: .default)
            let b = try #require(try await fixture.store.tenant(named: "b"))
            let otherInbound = InboundMessage(
                id: .next(), receivedAt: at, clientIP: nil, heloName: "mx", mailFrom: "u@y.test", recipients: ["help@b.test"],
                purpose: .inbound, webhookURL: nil, content: Array("b\r\n".utf8), tenant: b.id)
            let report = InboundMessage(
                id: .next(), receivedAt: at, clientIP: nil, heloName: "mx", mailFrom: "", recipients: ["postmaster@bounces.x.test"],
                purpose: .report, webhookURL: nil, content: Array("r\r\n".utf8))
            try await fixture.store.commitInbound([ownInbound, otherInbound, report])
            let own: HTTPFields = [.authorization: "Bearer \(fixture.apiKey)"]
            let other: HTTPFields = [.authorization: "Bearer \(fixture.otherKey)"]
            let ops: HTTPFields = [.authorization: "Bearer \(fixture.operatorKey)"]
            // A's key: B's message answers as a message that does not exist.
            let unknown = MessageID.random()
            let unknownBody = try await client.execute(uri: "/api/v1/messages/\(unknown)", method: .get, headers: own) { response in
                let problem = try Self.problem(response, .notFound, code: .notFound)
                #expect(problem.instance == "/api/v1/messages/\(unknown)")
                return String(buffer: response.body).replacingOccurrences(of: unknown.description, with: "ID")
            }
            try await client.execute(uri: "/api/v1/messages/\(fixture.otherMessage)", method: .get, headers: own) { response in
                #expect(response.status == .notFound)
                #expect(String(buffer: response.body).replacingOccurrences(of: fixture.otherMessage.description, with: "ID") == unknownBody)
            }
            try await client.execute(uri: "/api/v1/messages/\(fixture.otherMessage)", method: .get, headers: other) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/api/v1/messages/\(fixture.otherMessage)", method: .get, headers: ops) { response in
                #expect(response.status == .ok)
            }
            // Counters: each tenant its own; the operator all, or one with ?tenant=.
            let outbound = { (uri: String, headers: HTTPFields) async throws -> Int in
                try await client.execute(uri: uri, method: .get, headers: headers) { response in
                    #expect(response.status == .ok)
                    return try JSONDecoder().decode(StatsResponse.self, from: Data(buffer: response.body)).counters.outbound
                }
            }
            #expect(try await outbound("/api/v1/stats", own) == 3)
            #expect(try await outbound("/api/v1/stats", other) == 1)
            #expect(try await outbound("/api/v1/stats", ops) == 4)
            #expect(try await outbound("/api/v1/stats?tenant=b", ops) == 1)
            #expect(try await outbound("/api/v1/stats?tenant=default", ops) == 3)
            #expect(try await outbound("/api/v1/stats?tenant=default", own) == 3)
            // Inbound: own only; reports only for the operator.
            let inbound = { (uri: String, headers: HTTPFields) async throws -> [String] in
                try await client.execute(uri: uri, method: .get, headers: headers) { response in
                    #expect(response.status == .ok)
                    return try JSONDecoder.iso8601.decode(InboundListResponse.self, from: Data(buffer: response.body)).messages.map(\.id)
                }
            }
            #expect(try await inbound("/api/v1/inbound", own) == [ownInbound.id.description])
            #expect(try await inbound("/api/v1/inbound", other) == [otherInbound.id.description])
            #expect(Set(try await inbound("/api/v1/inbound", ops)) == Set([ownInbound, otherInbound, report].map(\.id.description)))
            #expect(try await inbound("/api/v1/inbound?tenant=b", ops) == [otherInbound.id.description])
            // A tenant key naming another tenant is refused alike whether that tenant exists or not.
            for path in ["/api/v1/stats", "/api/v1/inbound", "/api/v1/messages/\(fixture.otherMessage)"] {
                for name in ["b", "nosuchtenant"] {
                    try await client.execute(uri: path + "?tenant=\(name)", method: .get, headers: own) { response in
                        _ = try Self.problem(response, .forbidden, code: .forbiddenTenant)
                    }
                }
            }
            try await client.execute(uri: "/api/v1/stats?tenant=nosuchtenant", method: .get, headers: ops) { response in
                _ = try Self.problem(response, .badRequest, code: .unknownTenant)
            }
        }
    }

    @Test func wrongSecretIs401() async throws {
        try await withAPI { client, fixture in
            let wrongSecret = String(fixture.apiKey.dropLast(4)) + "zzzz"
            try await client.execute(uri: "/api/v1/stats", method: .get, headers: [.authorization: "Bearer \(wrongSecret)"]) { response in
                _ = try Self.problem(response, .unauthorized, code: .invalidAPIKey)
                #expect(response.headers[.wwwAuthenticate] == #"Bearer error="invalid_token""#)
            }
        }
    }

    /// After too many wrong secrets for one key id, even the right key gets 429 with `Retry-After`.
    @Test func repeatedWrongSecretsAre429WithRetryAfter() async throws {
        try await withAPI { client, fixture in
            let key = try #require(APIKey(parsing: Substring(fixture.apiKey)))
            let wrong = APIKey(keyID: key.keyID, secret: String(repeating: "z", count: 32)).text
            for _ in 0..<AuthFailureThrottle.Limits.defaultMaxFailuresPerUser {
                try await client.execute(uri: "/api/v1/stats", method: .get, headers: [.authorization: "Bearer \(wrong)"]) { response in
                    #expect(response.status == .unauthorized)
                }
            }
            for token in [wrong, fixture.apiKey] {
                try await client.execute(uri: "/api/v1/stats", method: .get, headers: [.authorization: "Bearer \(token)"]) { response in
                    let problem = try Self.problem(response, .tooManyRequests, code: .throttled)
                    let seconds = try #require(response.headers[.retryAfter].flatMap { Int($0) })
                    #expect(seconds > 0 && seconds <= 300)
                    #expect(problem.detail.contains("try again in \(seconds) s"))
                }
            }
        }
    }
}

extension JSONDecoder {
    static var iso8601: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
