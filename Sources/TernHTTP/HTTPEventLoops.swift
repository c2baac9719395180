public import NIOCore
public import NIOPosix

/// Event loops of their own for the HTTP server (the API and the tracking endpoints): by
/// default half of the cores, so that on a machine Tern shares with its SMTP sessions,
/// delivery and the store's writer, opens and clicks do not take every core.
///
/// Measured on 2 cores with `Benchmarks/tracking-http.sh` (wrk on the same machine, beside
/// nginx), one loop against two (NIO's shared loops, as before), p99 latency as a ratio of
/// nginx's in the same round:
/// - 3 rounds of 15 s, two runs each: 0.75–0.95 against 0.92–1.36 over the 12 opens and
///   clicks rounds each; requests per second 0.78–1.07 of nginx's against 0.88–1.37.
/// - 3 rounds of 30 s: medians (opens/clicks) 0.86/0.92, 0.81/0.90, 0.74/0.79, 0.82/0.98 and
///   0.96/0.97 in five runs with one loop (5 of their 30 rounds above 1, up to 1.39),
///   1.16/1.46 in one run with two; Tern's CPU seconds per run 27–31 against 36–37.
/// A likely reason, not measured on its own: with one loop, fewer threads compete for the
/// two cores with wrk, and each of the loop's wake-ups answers more connections.
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
