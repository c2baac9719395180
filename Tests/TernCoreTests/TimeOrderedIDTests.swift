import Foundation
import Testing
import TernCore

@Suite struct TimeOrderedIDTests {
    @Test func everyIDIsLargerThanTheOneBefore() {
        var previous: Int64 = 0
        for _ in 0..<20_000 {
            let id = MessageID.next().rawValue
            #expect(id > previous)
            previous = id
        }
        #expect(RecipientID.next().rawValue > previous)
    }

    @Test func aClockGoingBackDoesNotRepeatIDs() {
        let generator = TimeOrderedID()
        let now: Int64 = 1_800_000_000_000
        let first = generator.next(nowMilliseconds: now)
        let earlier = generator.next(nowMilliseconds: now - 60_000)
        #expect(earlier == first + 1)
    }

    @Test func carryTheirTimeAndStayPositiveFor69Years() {
        let now = Date(timeIntervalSince1970: 1_800_000_000.123)
        let id = TimeOrderedID().next(nowMilliseconds: Int64(now.timeIntervalSince1970 * 1000))
        #expect(abs(TimeOrderedID.date(of: id).timeIntervalSince(now)) < 0.002)
        let late = TimeOrderedID().next(nowMilliseconds: TimeOrderedID.epochMilliseconds + (Int64(1) << 41) - 1)
        #expect(late > 0)
        #expect(TimeOrderedID.date(of: late) > Date(timeIntervalSince1970: 3_900_000_000))  // 2093
    }

    @Test func aLaterMillisecondGivesALargerID() {
        let generator = TimeOrderedID()
        let older = generator.next(nowMilliseconds: 1_800_000_000_000)
        let newer = TimeOrderedID().next(nowMilliseconds: 1_800_000_000_001)
        #expect(newer > older)
    }

    /// Each millisecond starts at a random point of the lower half of the sequence, so that
    /// two processes starting in the same millisecond rarely give the same id.
    @Test func startingPointsAreSpreadOverTheLowerHalf() {
        let now: Int64 = 1_800_000_000_000
        let half = Int64(1) << (TimeOrderedID.sequenceBits - 1)
        var starts: Set<Int64> = []
        for millisecond in 0..<200 {
            let id = TimeOrderedID().next(nowMilliseconds: now + Int64(millisecond))
            let sequence = id & ((Int64(1) << TimeOrderedID.sequenceBits) - 1)
            #expect(sequence >= 1 && sequence < half)
            starts.insert(sequence)
        }
        #expect(starts.count > 190)
        // A second generator in the same millisecond starts somewhere else.
        let first = TimeOrderedID().next(nowMilliseconds: now)
        let clashes = (0..<100).filter { _ in TimeOrderedID().next(nowMilliseconds: now) == first }
        #expect(clashes.count < 3)
    }
}
