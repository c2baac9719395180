import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import TernCore
import TernHTTP
import TernStoreSQLite

/// The embedded OpenAPI document: current with openapi.yaml, and in step with the code.
@Suite struct OpenAPIDocumentTests {
    static let sourcePath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/TernHTTP/OpenAPI/openapi.yaml")

    @Test func embeddedDocumentIsCurrent() throws {
        let source = try Data(contentsOf: Self.sourcePath)
        let digest = SHA256.hash(data: source).map { String(format: "%02x", $0) }.joined()
        #expect(digest == OpenAPIDocument.sourceSHA256, "openapi.yaml changed: run scripts/generate-openapi.sh")
    }

    func document() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as? [String: Any])
    }

    func schema(_ name: String) throws -> [String: Any] {
        let components = try #require(try document()["components"] as? [String: Any])
        let schemas = try #require(components["schemas"] as? [String: Any])
        return try #require(schemas[name] as? [String: Any], "no schema \(name)")
    }

    @Test func isOpenAPI31() throws {
        #expect((try document()["openapi"] as? String)?.hasPrefix("3.1.") == true)
    }

    /// Every counter, under the name the JSON uses, and nothing else.
    @Test func statsSchemaListsEveryCounter() throws {
        let stats = try schema("StatsResponse")
        let properties = try #require(stats["properties"] as? [String: Any])
        #expect(Set(properties.keys) == Set(Counters.names + ["from", "to"]))
        #expect(Set(try #require(stats["required"] as? [String])) == Set(Counters.names))
    }

    @Test func problemCodesMatchTheCode() throws {
        let problem = try #require(try schema("Problem")["properties"] as? [String: Any])
        let codes = try #require((problem["code"] as? [String: Any])?["enum"] as? [String])
        #expect(Set(codes) == Set(APIError.Code.all.map(\.rawValue)))
        let field = try #require(try schema("FieldError")["properties"] as? [String: Any])
        let fieldCodes = try #require((field["code"] as? [String: Any])?["enum"] as? [String])
        #expect(Set(fieldCodes) == Set(APIError.FieldError.Code.all.map(\.rawValue)))
    }

    @Test func recipientStatesAndEventTypesMatchTheCode() throws {
        let recipient = try #require(try schema("Recipient")["properties"] as? [String: Any])
        let states = try #require((recipient["state"] as? [String: Any])?["enum"] as? [String])
        #expect(Set(states) == Set([RecipientState.queued, .sent, .failed, .suppressed].map(\.rawValue)))
        let event = try #require(try schema("Event")["properties"] as? [String: Any])
        let types = try #require((event["type"] as? [String: Any])?["enum"] as? [String])
        #expect(Set(types) == Set(EventType.allCases.map(\.rawValue)))
    }

    @Test func servedWithoutAKey() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tern-openapi-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: folder + "/tern.sqlite")
        let app = Application(router: TernAPI(store: store, credentials: CredentialDirectory(store: store)).buildRouter())
        try await app.test(.router) { client in
            try await client.execute(uri: "/api/v1/openapi.json", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                #expect(String(buffer: response.body) == OpenAPIDocument.json)
            }
        }
        try await store.close()
    }
}
