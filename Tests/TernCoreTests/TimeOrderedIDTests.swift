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
        #expect(earlier == first + Int64(TimeOrderedID.nodeCount))
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

    /// Two nodes never give the same id, whatever their clocks: each id carries its node number.
    @Test func twoNodesNeverGiveTheSameID() {
        let now: Int64 = 1_800_000_000_000
        let first = TimeOrderedID(node: 1)
        let second = TimeOrderedID(node: 2)
        var seen: Set<Int64> = []
        for step in 0..<10_000 {
            // Bursts well past one millisecond's 4,096 sequence numbers, with clocks apart.
            let a = first.next(nowMilliseconds: now + Int64(step / 5_000))
            let b = second.next(nowMilliseconds: now + Int64(step / 3_000))
            #expect(TimeOrderedID.node(of: a) == 1)
            #expect(TimeOrderedID.node(of: b) == 2)
            #expect(seen.insert(a).inserted)
            #expect(seen.insert(b).inserted)
        }
    }

    @Test func aNodeNumberSetLaterAppliesToTheNextID() {
        let generator = TimeOrderedID(node: 5)
        let now: Int64 = 1_800_000_000_000
        let before = generator.next(nowMilliseconds: now)
        generator.setNode(1023)
        let after = generator.next(nowMilliseconds: now)
        #expect(after > before)
        #expect(TimeOrderedID.node(of: after) == 1023)
        #expect(generator.node == 1023)
    }
}
