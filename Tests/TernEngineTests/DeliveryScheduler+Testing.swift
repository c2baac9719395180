import Foundation
import TernCore
@testable import TernEngine

/// What the scheduler's tests read and do that the delivery loop does not.
extension DeliveryScheduler {
    /// Recipients handed over without a load request (the delivery loop always loads). Those
    /// that do not fit come back in ``Actions/notAdmitted``. A recipient already held is ignored.
    mutating func recipientsDue(_ due: [ScheduledRecipient], now: Date) -> Actions {
        var actions = Actions()
        advance(to: now, into: &actions)
        for recipient in due {
            admit(recipient, now: now, into: &actions)
        }
        return finish(now: now, actions)
    }

    /// The number of parallel deliveries the destination may have now.
    func concurrencyLimit(for destination: DestinationKey) -> Int {
        destinations[destination]?.limit ?? initialWindow
    }

    /// Deliveries in flight to the destination.
    func inFlightCount(for destination: DestinationKey) -> Int {
        destinations[destination]?.inFlight ?? 0
    }
}
