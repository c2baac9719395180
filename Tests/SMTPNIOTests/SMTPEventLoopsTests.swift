import NIOCore
import NIOPosix
import SMTPNIO
import Testing

@Suite struct SMTPEventLoopsTests {
    @Test(arguments: [(0, 1, 1), (1, 1, 1), (2, 1, 1), (3, 2, 1), (4, 2, 2), (5, 3, 2), (16, 8, 8)])
    func halfOfTheCoresEach(cores: Int, intake: Int, delivery: Int) {
        let counts = SMTPEventLoops.threadCounts(cores: cores)
        #expect(counts.intake == intake)
        #expect(counts.delivery == delivery)
    }

    @Test func twoGroupsOfTheirOwnThreads() async throws {
        let loops = SMTPEventLoops(cores: 4)
        let intake = Array(loops.intake.makeIterator())
        let delivery = Array(loops.delivery.makeIterator())
        #expect(intake.count == 2)
        #expect(delivery.count == 2)
        #expect(!intake.contains { loop in delivery.contains { $0 === loop } })
        #expect(!intake.contains { loop in MultiThreadedEventLoopGroup.singleton.makeIterator().contains { $0 === loop } })
        // Each loop runs on its own thread: a loop's work never runs in another's.
        let intakeLoop = intake[0]
        let deliveryLoop = delivery[0]
        #expect(try await intakeLoop.submit { deliveryLoop.inEventLoop }.get() == false)
        try await loops.intake.shutdownGracefully()
        try await loops.delivery.shutdownGracefully()
    }
}
