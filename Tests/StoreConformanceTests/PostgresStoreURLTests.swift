import Testing
import TernStorePostgres

@Suite struct PostgresStoreURLTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var text: String
        var expected: PostgresStoreURL?
        var testDescription: String { text }
    }

    @Test(arguments: [
        Case(
            text: "postgres://tern:secret@127.0.0.1:5433/tern",
            expected: PostgresStoreURL(host: "127.0.0.1", port: 5433, username: "tern", password: "secret", database: "tern")),
        Case(
            text: "postgresql://tern@db.example.com/mail",
            expected: PostgresStoreURL(host: "db.example.com", username: "tern", database: "mail")),
        Case(
            text: "postgres://u%40x:p%2Fw%3A@localhost:6000/db?sslmode=disable",
            expected: PostgresStoreURL(host: "localhost", port: 6000, username: "u@x", password: "p/w:", database: "db")),
        Case(text: "mysql://tern@localhost/tern", expected: nil),
        Case(text: "postgres://localhost/tern", expected: nil),
        Case(text: "postgres://tern@localhost", expected: nil),
        Case(text: "postgres://tern@localhost/", expected: nil),
        Case(text: "postgres://tern@/tern", expected: nil),
        Case(text: "postgres://tern@localhost/tern?sslmode=require", expected: nil),
        Case(text: "postgres://tern@localhost:0/tern", expected: nil),
        Case(text: "not a url at all", expected: nil),
    ])
    func parses(_ item: Case) throws {
        if let expected = item.expected {
            #expect(try PostgresStoreURL(parsing: item.text) == expected)
        } else {
            #expect(throws: PostgresStoreURLError.self) { try PostgresStoreURL(parsing: item.text) }
        }
    }

    /// An operator's error message must not show the password.
    @Test func errorsDoNotShowThePassword() {
        do {
            _ = try PostgresStoreURL(parsing: "postgres://tern:hunter2@localhost/tern?sslmode=verify-full")
            Issue.record("expected an error")
        } catch {
            #expect(!"\(error)".contains("hunter2"))
        }
    }
}
