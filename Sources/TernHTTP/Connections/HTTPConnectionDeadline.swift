import NIOCore

/// When an HTTP connection has waited too long for its client: a whole request head must
/// arrive within `timeout` of the connection's start or of its last response, so that neither
/// an idle connection nor a head trickled a byte at a time holds it; a body must not pause for
/// `timeout` between its parts. While the router works on a request, nothing is timed.
///
/// Pure: the fast path reports what happens, with the time, and asks for the deadline.
struct HTTPConnectionDeadline {
    let timeout: TimeAmount
    /// Requests handed to the router whose response has not ended.
    private(set) var routerRequests = 0
    /// A request handed to the router is still being read (its end has not come).
    private var readingRequest = false
    /// Since when the connection waits: for a request head, or for the next part of a body.
    private var since: NIODeadline

    init(timeout: TimeAmount, now: NIODeadline) {
        self.timeout = timeout
        self.since = now
    }

    /// The time to close the connection at; nil while the router works on a whole request.
    var deadline: NIODeadline? {
        if !readingRequest, routerRequests > 0 { return nil }
        return since + timeout
    }

    /// The fast path answered a request: the wait for the next head starts.
    mutating func answered(now: NIODeadline) {
        if routerRequests == 0 { since = now }
    }

    /// The router read the head of a request.
    mutating func routerReadHead(now: NIODeadline) {
        routerRequests += 1
        readingRequest = true
        since = now
    }

    /// The router read a part of a body.
    mutating func routerReadBody(now: NIODeadline) {
        since = now
    }

    /// The router read the end of a request.
    mutating func routerReadEnd() {
        readingRequest = false
    }

    /// The router's response to a request ended.
    mutating func routerAnswered(now: NIODeadline) {
        guard routerRequests > 0 else { return }
        routerRequests -= 1
        if routerRequests == 0, !readingRequest { since = now }
    }
}
