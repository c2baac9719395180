public import Logging
public import ServiceLifecycle
public import TernCore

/// Reads the reports the MX stored, in arrival order, and stores what each means
/// (`ReportReader`) in one transaction with the report marked read. A report is read
/// once; one that cannot be stored now (the store is busy or full) is tried again on
/// the next round.
public struct ReportService: Service {
    public struct Configuration: Sendable {
        /// How often to look for reports.
        public var pollInterval: Duration
        /// Reports read per round.
        public var batchSize: Int

        public static let defaultPollInterval: Duration = .milliseconds(250)

        public init(pollInterval: Duration = Configuration.defaultPollInterval, batchSize: Int = 100) {
            self.pollInterval = pollInterval
            self.batchSize = batchSize
        }
    }

    private let reader: ReportReader
    private let store: any Store
    private let configuration: Configuration
    private let logger: Logger

    public init(reader: ReportReader, store: any Store, configuration: Configuration = Configuration(), logger: Logger) {
        self.reader = reader
        self.store = store
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await readPending()
                try? await Task.sleep(for: configuration.pollInterval)
            }
        }
        // What arrived before the shutdown is read now rather than at the next start.
        await readPending()
    }

    /// Reads every report waiting now; returns how many were read.
    @discardableResult
    public func readPending() async -> Int {
        var count = 0
        while true {
            let reports: [InboundMessage]
            do {
                reports = try await store.pendingReports(limit: configuration.batchSize)
            } catch {
                logger.error("cannot read pending reports: \(error)")
                return count
            }
            guard !reports.isEmpty else { return count }
            for report in reports {
                do {
                    let outcome = try await reader.read(report)
                    try await store.completeReport(report.id, outcome: outcome)
                    count += 1
                    let types = outcome.events.map(\.type.rawValue).joined(separator: ", ")
                    logger.info("report \(report.id) read as \(outcome.kind): \(types.isEmpty ? "no event" : types)")
                } catch {
                    logger.error("cannot store report \(report.id): \(error)")
                    return count
                }
            }
        }
    }
}
