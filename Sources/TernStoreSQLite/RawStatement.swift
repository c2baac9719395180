import GRDB
import GRDBSQLite

/// A statement prepared straight on a GRDB connection, bound and stepped through SQLite's C
/// interface: for the store's hottest loops (thousands of rows in one transaction), where
/// GRDB's `StatementArguments` (an array of boxed values per row) and its per-execution
/// bookkeeping cost more than SQLite's own work. Errors are GRDB's `DatabaseError`, as
/// from any other statement. Use it only inside the `Database` access it was made in.
final class RawStatement {
    private let connection: OpaquePointer
    private let statement: OpaquePointer
    private let sql: String
    /// The connection's cached GRDB statement that owns `statement`, if it came from there.
    private let cached: Statement?

    init(_ db: Database, sql: String) throws {
        guard let connection = db.sqliteConnection else {
            throw DatabaseError(resultCode: .SQLITE_MISUSE, message: "the database connection is closed", sql: sql)
        }
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v2(connection, sql, -1, &statement, nil)
        guard code == SQLITE_OK, let statement else {
            sqlite3_finalize(statement)
            throw Self.error(code, connection, sql)
        }
        self.connection = connection
        self.statement = statement
        self.sql = sql
        self.cached = nil
    }

    /// The connection's cached statement for `sql` (GRDB's `cachedStatement`): prepared once
    /// per connection, kept and finalized by GRDB with the connection.
    init(cached sql: String, _ db: Database) throws {
        guard let connection = db.sqliteConnection else {
            throw DatabaseError(resultCode: .SQLITE_MISUSE, message: "the database connection is closed", sql: sql)
        }
        let cached = try db.cachedStatement(sql: sql)
        self.connection = connection
        self.statement = cached.sqliteStatement
        self.sql = sql
        self.cached = cached
    }

    deinit {
        if cached == nil { sqlite3_finalize(statement) }
    }

    /// Binds `value` to the parameter at `index` (from 1).
    func bind(_ index: Int32, _ value: Int64) throws {
        try check(sqlite3_bind_int64(statement, index, value))
    }

    /// Binds NULL to the parameter at `index` (from 1).
    func bindNull(_ index: Int32) throws {
        try check(sqlite3_bind_null(statement, index))
    }

    /// Binds UTF-8 text to the parameter at `index` (from 1); SQLite copies it.
    func bind(_ index: Int32, utf8 bytes: UnsafeBufferPointer<UInt8>) throws {
        // SQLITE_TRANSIENT: the bytes need not outlive this call.
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        // A zero-length text still needs a non-null pointer, or SQLite binds NULL.
        let empty: StaticString = ""
        let base = bytes.baseAddress.map(UnsafeRawPointer.init) ?? UnsafeRawPointer(empty.utf8Start)
        try check(sqlite3_bind_text(statement, index, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count), transient))
    }

    /// Binds a string as UTF-8 text to the parameter at `index` (from 1).
    func bind(_ index: Int32, _ text: String) throws {
        var text = text
        try text.withUTF8 { try bind(index, utf8: $0) }
    }

    /// Runs the statement to its end with the values bound (rows it returns are skipped),
    /// then makes it ready for the next ones.
    func run() throws {
        var code = sqlite3_step(statement)
        while code == SQLITE_ROW { code = sqlite3_step(statement) }
        // Read before the reset, which would leave only the code.
        let failure = code == SQLITE_DONE ? nil : Self.error(code, connection, sql)
        sqlite3_reset(statement)
        if let failure { throw failure }
    }

    private func check(_ code: Int32) throws {
        guard code == SQLITE_OK else { throw Self.error(code, connection, sql) }
    }

    private static func error(_ code: Int32, _ connection: OpaquePointer, _ sql: String) -> DatabaseError {
        DatabaseError(
            resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(connection)), sql: sql)
    }
}
