import Testing
@testable import TernCore

/// The throttle of failed AUTH and API key attempts, driven by instants the test chooses.
@Suite struct AuthFailureThrottleTests {
    let t0 = ContinuousClock.now
    let client = AuthFailureThrottle.Key.client("192.0.2.1")
    let limits = AuthFailureThrottle.Limits(maxFailuresPerClient: 3, maxFailuresPerUser: 5, window: .seconds(120))

    func at(_ seconds: Double) -> ContinuousClock.Instant { t0 + .milliseconds(Int(seconds * 1000)) }

    @discardableResult
    func fail(_ throttle: inout AuthFailureThrottle, client: AuthFailureThrottle.Key?, user: String, at time: Double) -> AuthFailureThrottle.Refusal? {
        switch throttle.begin(client: client, user: .user(user), now: at(time)) {
        case .allowed: return nil
        case .refused(let refusal): return refusal
        }
    }

    @Test func refusesAClientAfterItsLimitUntilTheWindowCloses() {
        var throttle = AuthFailureThrottle(limits: limits)
        for (index, user) in ["a", "b", "c"].enumerated() {
            #expect(fail(&throttle, client: client, user: user, at: Double(index)) == nil)
        }
        let refusal = fail(&throttle, client: client, user: "d", at: 20)
        #expect(refusal == AuthFailureThrottle.Refusal(key: client, retryAfterSeconds: 100, startsBurst: true))
        // Once per burst: later refusals in the same window are not the first.
        #expect(fail(&throttle, client: client, user: "a", at: 119.5)?.startsBurst == false)
        #expect(fail(&throttle, client: client, user: "a", at: 119.5)?.retryAfterSeconds == 1)
        // The window opened at the first failure: at 120 s it has closed.
        #expect(fail(&throttle, client: client, user: "a", at: 120) == nil)
    }

    @Test func refusesAUserFromAnyClient() {
        var throttle = AuthFailureThrottle(limits: limits)
        for index in 0..<5 {
            #expect(fail(&throttle, client: .client("198.51.100.\(index)"), user: "alice", at: Double(index)) == nil)
        }
        let refusal = fail(&throttle, client: .client("203.0.113.9"), user: "alice", at: 10)
        #expect(refusal?.key == .user("alice"))
        #expect(refusal?.retryAfterSeconds == 110)
        #expect(fail(&throttle, client: .client("203.0.113.9"), user: "bob", at: 10) == nil)
    }

    @Test func successesDoNotCount() {
        var throttle = AuthFailureThrottle(limits: limits)
        for second in 0..<10 {
            guard case .allowed(let attempt) = throttle.begin(client: client, user: .user("alice"), now: at(Double(second))) else {
                Issue.record("refused a client that never failed")
                return
            }
            throttle.succeeded(attempt)
        }
        #expect(throttle.trackedKeys == 0)
        #expect(fail(&throttle, client: client, user: "alice", at: 11) == nil)
    }

    @Test func concurrentAttemptsCountBeforeTheyFail() {
        // Attempts let through but not yet answered already count: a burst cannot all pass.
        var throttle = AuthFailureThrottle(limits: limits)
        var allowed = 0
        for _ in 0..<20 {
            if case .allowed = throttle.begin(client: client, user: nil, now: t0) { allowed += 1 }
        }
        #expect(allowed == 3)
    }

    @Test func aSuccessAfterTheWindowClosedForgivesNothingNew() {
        var throttle = AuthFailureThrottle(limits: limits)
        guard case .allowed(let slow) = throttle.begin(client: client, user: nil, now: at(0)) else { return }
        fail(&throttle, client: client, user: "x", at: 130)
        fail(&throttle, client: client, user: "y", at: 131)
        throttle.succeeded(slow)  // its window is gone: the two failures of the new one stay
        #expect(fail(&throttle, client: client, user: "z", at: 132) == nil)
        #expect(fail(&throttle, client: client, user: "z", at: 133)?.key == client)
    }

    @Test func memoryIsBounded() {
        var throttle = AuthFailureThrottle(limits: .init(maxTrackedKeys: 100))
        for index in 0..<1000 {
            fail(&throttle, client: nil, user: "user\(index)", at: Double(index) / 100)
        }
        #expect(throttle.trackedKeys <= 100)
        // The newest are kept.
        for _ in 0..<9 { fail(&throttle, client: nil, user: "user999", at: 10) }
        #expect(fail(&throttle, client: nil, user: "user999", at: 10)?.key == .user("user999"))
    }

    @Test(arguments: [
        ("192.0.2.1", "192.0.2.1"), ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"), ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
    ])
    func clientKeys(address: String, key: String) throws {
        #expect(AuthFailureThrottle.Key(client: try #require(IPAddress(address))) == .client(key))
    }
}
