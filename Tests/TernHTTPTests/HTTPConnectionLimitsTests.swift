import NIOCore
import Testing
@testable import TernHTTP

@Suite struct HTTPConnectionLimitsTests {
    @Test func theDefaults() {
        let limits = HTTPConnectionLimits()
        #expect(limits.idleTimeout == .seconds(60))
        #expect(limits.maxConnections == 10_000 && limits.maxConnectionsPerIP == 256)
    }

    @Test func aConnectionOverTheCapPerAddressIsRefusedWhileOthersAreAdmitted() {
        let admission = HTTPConnectionAdmission(limits: HTTPConnectionLimits(maxConnections: 10, maxConnectionsPerIP: 2))
        #expect(admission.admit("192.0.2.1") && admission.admit("192.0.2.1"))
        #expect(!admission.admit("192.0.2.1"))
        #expect(admission.admit("192.0.2.2"))
        #expect(admission.count(from: "192.0.2.1") == (all: 3, client: 2))
        admission.release("192.0.2.1")
        #expect(admission.admit("192.0.2.1"))
    }

    @Test func aConnectionOverTheTotalCapIsRefused() {
        let admission = HTTPConnectionAdmission(limits: HTTPConnectionLimits(maxConnections: 3, maxConnectionsPerIP: 3))
        for client in ["192.0.2.1", "192.0.2.2", nil] { #expect(admission.admit(client)) }
        #expect(!admission.admit("192.0.2.4"))
        admission.release(nil)
        #expect(admission.admit("192.0.2.4"))
        #expect(admission.count(from: nil) == (all: 3, client: 0))
    }
}

@Suite struct HTTPConnectionDeadlineTests {
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    static func at(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }

    @Test func aNewConnectionMustSendAHeadWithinTheTimeout() {
        let deadline = HTTPConnectionDeadline(timeout: .seconds(10), now: Self.start)
        #expect(deadline.deadline == Self.at(10))
    }

    @Test func eachAnswerStartsTheWaitAgain() {
        var deadline = HTTPConnectionDeadline(timeout: .seconds(10), now: Self.start)
        deadline.answered(now: Self.at(7))
        #expect(deadline.deadline == Self.at(17))
    }

    @Test func whileTheRouterWorksThereIsNoDeadline() {
        var deadline = HTTPConnectionDeadline(timeout: .seconds(10), now: Self.start)
        deadline.routerReadHead(now: Self.at(1))
        #expect(deadline.deadline == Self.at(11))  // reading its body
        deadline.routerReadBody(now: Self.at(5))
        #expect(deadline.deadline == Self.at(15))
        deadline.routerReadEnd()
        #expect(deadline.deadline == nil)
        deadline.routerAnswered(now: Self.at(40))
        #expect(deadline.deadline == Self.at(50))
    }

    @Test func pipelinedRequestsToTheRouterAreTimedOnceAllAreAnswered() {
        var deadline = HTTPConnectionDeadline(timeout: .seconds(10), now: Self.start)
        for second: Int64 in [1, 2] {
            deadline.routerReadHead(now: Self.at(second))
            deadline.routerReadEnd()
        }
        deadline.routerAnswered(now: Self.at(30))
        #expect(deadline.deadline == nil && deadline.routerRequests == 1)
        deadline.answered(now: Self.at(31))  // the fast path answers nothing while the router has requests
        deadline.routerAnswered(now: Self.at(32))
        #expect(deadline.deadline == Self.at(42))
    }

    @Test func anAnswerBeforeTheBodyEndedKeepsTimingTheBody() {
        var deadline = HTTPConnectionDeadline(timeout: .seconds(10), now: Self.start)
        deadline.routerReadHead(now: Self.at(1))
        deadline.routerAnswered(now: Self.at(2))
        #expect(deadline.deadline == Self.at(11))
    }
}
