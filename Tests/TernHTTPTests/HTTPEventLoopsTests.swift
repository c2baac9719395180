import NIOCore
import NIOPosix
import TernHTTP
import Testing

@Suite struct HTTPEventLoopsTests {
    @Test(arguments: [(0, 1), (1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (16, 8)])
    func halfOfTheCoresByDefault(cores: Int, threads: Int) async throws {
        #expect(HTTPEventLoops.defaultThreadCount(cores: cores) == threads)
        let loops = HTTPEventLoops(cores: cores)
        #expect(loops.threadCount == threads)
        #expect(Array(loops.group.makeIterator()).count == threads)
        try await loops.group.shutdownGracefully()
    }

    @Test func aGivenCountOfItsOwnThreads() async throws {
        let loops = HTTPEventLoops(threads: 3, cores: 2)
        let own = Array(loops.group.makeIterator())
        #expect(loops.threadCount == 3)
        #expect(own.count == 3)
        #expect(!own.contains { loop in MultiThreadedEventLoopGroup.singleton.makeIterator().contains { $0 === loop } })
        let first = own[0]
        let second = own[1]
        #expect(try await first.submit { second.inEventLoop }.get() == false)
        try await loops.group.shutdownGracefully()
    }
}
