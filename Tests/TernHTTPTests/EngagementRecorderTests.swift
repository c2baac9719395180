import Foundation
import Logging
import Synchronization
import TernCore
import Testing
@testable import TernHTTP

@Suite struct EngagementRecorderTests {
    struct Unavailable: Error {}

    /// Keeps what is written to it, or fails while `failing` is set; `duringWrite` runs at
    /// each write first, as requests answered meanwhile would.
    final class Store: EngagementStore {
        let events = Mutex<[EngagementEvent]>([])
        let failing = Atomic(false)
        let duringWrite = Mutex<(@Sendable () -> Void)?>(nil)
        func links(of message: MessageID) async throws -> [String] { [] }
        func recordEngagement(_ events: [EngagementEvent]) async throws {
            duringWrite.withLock { $0 }?()
            if failing.load(ordering: .relaxed) { throw Unavailable() }
            self.events.withLock { $0 += events }
        }
        func recipientSummary(_ id: RecipientID) async throws -> RecipientSummary? { nil }
        func timeline(of message: MessageID) async throws -> [TimelineEvent] { [] }
    }

    static func open(_ n: Int) -> EngagementEvent {
        EngagementEvent(
            type: .open, messageID: MessageID(rawValue: 1), recipientID: RecipientID(rawValue: 2), at: Date(timeIntervalSince1970: 0),
            details: EngagementDetails(link: n))
    }

    static func numbers(_ events: [EngagementEvent]) -> [Int?] { events.map(\.details.link) }

    /// Beyond `maxPending` waiting events, new ones are dropped and counted; what was waiting
    /// is written as it was, and the count starts again after each flush.
    @Test func eventsBeyondTheLimitAreDroppedAndCounted() async {
        let store = Store()
        let recorder = EngagementRecorder(store: store, configuration: .init(maxPending: 3), logger: Logger(label: "test"))
        for n in 0..<5 { recorder.record(Self.open(n)) }
        #expect(await recorder.flush() == .init(stored: 3, kept: 0, dropped: 2))
        #expect(Self.numbers(store.events.withLock { $0 }) == [0, 1, 2])
        recorder.record(Self.open(5))
        #expect(await recorder.flush() == .init(stored: 1, kept: 0, dropped: 0))
        #expect(await recorder.flush() == .init(stored: 0, kept: 0, dropped: 0))
        #expect(Self.numbers(store.events.withLock { $0 }) == [0, 1, 2, 5])
    }

    /// A batch the store refused is written first at the next flush, before what came since;
    /// beyond `maxPending`, the newest are the ones dropped.
    @Test func aRefusedBatchIsKeptInOrder() async {
        let store = Store()
        let recorder = EngagementRecorder(store: store, configuration: .init(maxPending: 4), logger: Logger(label: "test"))
        for n in 0..<3 { recorder.record(Self.open(n)) }
        store.failing.store(true, ordering: .relaxed)
        #expect(await recorder.flush() == .init(stored: 0, kept: 3, dropped: 0))
        for n in 3..<5 { recorder.record(Self.open(n)) }  // 4 taken (0, 1, 2, 3), 4 dropped
        store.failing.store(false, ordering: .relaxed)
        #expect(await recorder.flush() == .init(stored: 4, kept: 0, dropped: 1))
        #expect(Self.numbers(store.events.withLock { $0 }) == [0, 1, 2, 3])
    }

    /// Requests answered while a write fails are kept after the refused batch; what would
    /// make more than `maxPending` is dropped, the newest first.
    @Test func eventsRecordedDuringAFailedWriteFollowTheRefusedBatch() async {
        let store = Store()
        let recorder = EngagementRecorder(store: store, configuration: .init(maxPending: 3), logger: Logger(label: "test"))
        for n in 0..<2 { recorder.record(Self.open(n)) }
        store.failing.store(true, ordering: .relaxed)
        store.duringWrite.withLock { $0 = { for n in 2..<5 { recorder.record(Self.open(n)) } } }
        #expect(await recorder.flush() == .init(stored: 0, kept: 2, dropped: 0))
        store.failing.store(false, ordering: .relaxed)
        store.duringWrite.withLock { $0 = nil }
        #expect(await recorder.flush() == .init(stored: 3, kept: 0, dropped: 2))
        #expect(Self.numbers(store.events.withLock { $0 }) == [0, 1, 2])
    }
}
