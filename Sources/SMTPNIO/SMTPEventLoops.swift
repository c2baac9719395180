public import NIOCore
public import NIOPosix

/// Event loops of their own for SMTP sessions (intake: submission and MX) and for
/// delivery's client connections, so that neither kind of channel waits behind the other
/// on one thread.
/// On 2 cores this cost less CPU per relayed message than shared loops (`Benchmarks/RESULTS.md`).
///
/// `tern serve` keeps both groups for as long as the process runs, as NIO's shared loops are.
public struct SMTPEventLoops: Sendable {
    public let intake: MultiThreadedEventLoopGroup
    public let delivery: MultiThreadedEventLoopGroup

    /// Intake takes half of the cores (the larger half when the count is odd), delivery
    /// the rest; each has one loop at least.
    public static func threadCounts(cores: Int) -> (intake: Int, delivery: Int) {
        let cores = max(cores, 1)
        return ((cores + 1) / 2, max(cores / 2, 1))
    }

    public init(cores: Int = System.coreCount) {
        let counts = Self.threadCounts(cores: cores)
        intake = MultiThreadedEventLoopGroup(numberOfThreads: counts.intake)
        delivery = MultiThreadedEventLoopGroup(numberOfThreads: counts.delivery)
    }
}
