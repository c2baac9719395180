import GRDB
import GRDBSQLite
import TernCore

/// Reads message content for delivery on a read-only connection of its own, on the calling
/// thread: no hop to a reader queue and back, and no `BEGIN`/`COMMIT` around each read.
///
/// Not from `DatabasePool`'s readers: a synchronous read there waits for a free reader, and
/// readers lent to asynchronous reads come back only when their tasks run again, so callers
/// blocking the task pool could wait for ever. Here a caller waits only for another read of
/// a few pages, which never waits on anything.
final class ContentReader: Sendable {
    private let connection: DatabaseQueue

    init(path: String) throws {
        var configuration = Configuration()
        configuration.label = "tern.content"
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        connection = try DatabaseQueue(path: path, configuration: configuration)
    }

    /// Up to `maxLength` octets of the message's content from `offset` (`[]` past the end),
    /// through SQLite's incremental blob I/O: only the pages of that piece are read, from one
    /// snapshot (a WAL reader never waits for the writer).
    func read(_ message: MessageID, offset: Int, maxLength: Int) throws -> [UInt8] {
        try connection.inDatabase { db in
            var blob: OpaquePointer?
            let opened = sqlite3_blob_open(db.sqliteConnection, "main", "messages", "content", message.rawValue, 0, &blob)
            defer { sqlite3_blob_close(blob) }
            guard opened == SQLITE_OK, let blob else {
                throw StoreError(.notFound, "message \(message) has no content in the store")
            }
            let size = Int(sqlite3_blob_bytes(blob))
            guard offset < size else { return [] }
            let length = min(maxLength, size - offset)
            var status = SQLITE_OK
            let bytes = [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
                status = sqlite3_blob_read(blob, buffer.baseAddress, Int32(length), Int32(offset))
                initialized = status == SQLITE_OK ? length : 0
            }
            guard status == SQLITE_OK else {
                throw DatabaseError(resultCode: ResultCode(rawValue: status), message: "reading the content of message \(message)")
            }
            return bytes
        }
    }

    func close() throws {
        try connection.close()
    }
}
