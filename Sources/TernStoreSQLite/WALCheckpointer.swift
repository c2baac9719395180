import Foundation
import GRDB

/// Copies committed pages from the write-ahead log into the database file, in the
/// background and on a connection of its own.
///
/// SQLite otherwise checkpoints inside the commit that crosses `wal_autocheckpoint`: that
/// commit then also writes back and fsyncs pages all over the database file, and every
/// SMTP session waiting on it for its 250 waits that long too. A PASSIVE checkpoint takes
/// no writer lock, so commits go on while it runs; once it has caught up, the next commit
/// starts the log from the beginning again, which keeps it small.
final class WALCheckpointer: Sendable {
    private let connection: DatabaseQueue
    private let task: Task<Void, Never>

    static let defaultInterval: Duration = .milliseconds(250)

    init(path: String, interval: Duration = WALCheckpointer.defaultInterval) throws {
        var configuration = Configuration()
        configuration.label = "tern.checkpointer"
        let connection = try DatabaseQueue(path: path, configuration: configuration)
        self.connection = connection
        task = Task.detached(priority: .utility) {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                // Runs on the connection's own queue; a failed round is tried again next time.
                _ = try? await connection.writeWithoutTransaction { db in try db.checkpoint(.passive) }
            }
        }
    }

    /// Stops checkpointing and closes the connection (the log is checkpointed by SQLite
    /// when the last connection closes).
    func stop() async {
        task.cancel()
        await task.value
        try? connection.close()
    }
}
