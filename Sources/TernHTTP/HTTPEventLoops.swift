public import NIOCore
public import NIOPosix

/// Event loops of their own for the HTTP server (the API and the tracking endpoints): by
/// default half of the cores, so that on a machine Tern shares with its SMTP sessions,
/// delivery and the store's writer, opens and clicks do not take every core.
/// On 2 cores one loop gave opens and clicks a lower p99 than two (`Benchmarks/RESULTS.md`).
///
/// `tern serve` keeps the group for as long as the process runs, as NIO's shared loops are.
public struct HTTPEventLoops: Sendable {
    public let group: MultiThreadedEventLoopGroup
    /// The number of loops (and threads) in `group`.
    public let threadCount: Int

    /// Half of the cores (rounded down), one at least.
    public static func defaultThreadCount(cores: Int) -> Int {
        max(cores / 2, 1)
    }

    /// - Parameter threads: the number of loops; nil: `defaultThreadCount(cores:)`.
    public init(threads: Int? = nil, cores: Int = System.coreCount) {
        threadCount = max(threads ?? Self.defaultThreadCount(cores: cores), 1)
        group = MultiThreadedEventLoopGroup(numberOfThreads: threadCount)
    }
}
