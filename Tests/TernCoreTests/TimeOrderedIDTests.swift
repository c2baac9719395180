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
}
