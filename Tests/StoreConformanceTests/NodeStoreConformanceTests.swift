import Foundation
import Testing
import TernCore

/// `NodeStore`, and the webhook claim that lets several nodes share the inbound queue, on
/// every store.
@Suite struct NodeStoreConformanceTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func node(_ id: String, at date: Date, state: NodeState = .running, detail: String = "") -> NodeRecord {
        NodeRecord(id: id, hostname: "host-\(id)", startedAt: date, heartbeatAt: date, state: state, detail: detail)
    }

    func inbound(at date: Date) -> InboundMessage {
        InboundMessage(
            id: .next(), receivedAt: date, clientIP: "192.0.2.7", heloName: "mx.example.net", mailFrom: "a@example.org",
            recipients: ["help@support.example"], purpose: .inbound, webhookURL: "http://127.0.0.1:9/hook",
            content: Array("Subject: x\r\n\r\nbody\r\n".utf8))
    }

    // MARK: Nodes

    @Test(arguments: StoreFactory.all)
    func heartbeatsRegisterAndReplaceNodesListedByID(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            #expect(try await store.nodes(deliveriesSince: t0).isEmpty)
            try await store.heartbeat(node("b", at: t0))
            let a = node("a", at: t0.addingTimeInterval(1), detail: "tern 1.0; smtp 0.0.0.0:25")
            try await store.heartbeat(a)
            // A later heartbeat replaces every field.
            var b = node("b", at: t0)
            b.hostname = "moved.example"
            b.startedAt = t0.addingTimeInterval(10)
            b.heartbeatAt = t0.addingTimeInterval(30.5)
            b.detail = "restarted"
            try await store.heartbeat(b)
            let nodes = try await store.nodes(deliveriesSince: t0)
            #expect(nodes.map(\.node) == [a, b])
            #expect(nodes.allSatisfy { $0.leasedRecipients == 0 && $0.deliveries == 0 })
        }
    }

    @Test(arguments: StoreFactory.all)
    func aNodeThatStoppedIsListedAsStopped(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            try await store.heartbeat(node("a", at: t0))
            try await store.heartbeat(node("b", at: t0))
            var stopped = node("a", at: t0)
            stopped.heartbeatAt = t0.addingTimeInterval(60)
            stopped.state = .stopped
            try await store.heartbeat(stopped)
            let nodes = try await store.nodes(deliveriesSince: t0)
            #expect(nodes.map(\.node.state) == [.stopped, .running])
            #expect(nodes.map(\.node.heartbeatAt) == [t0.addingTimeInterval(60), t0])
            #expect(nodes.map { $0.node.isLive(now: t0.addingTimeInterval(61), timeout: 300) } == [false, true])
        }
    }

    /// Leases are counted while they live: real time, since `nodes(deliveriesSince:)` reads the clock.
    @Test(arguments: StoreFactory.all)
    func leasedRecipientsAreCountedForTheNodeHoldingThem(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let now = Date()
            let message = sampleMessage(recipients: 6, at: now.addingTimeInterval(-60))
            try await store.commitAndWait([message])
            for id in ["a", "b", "c"] { try await store.heartbeat(node(id, at: now)) }
            let held = try await store.claimDueRecipients(now: now, limit: 3, node: "a", leaseUntil: now.addingTimeInterval(3600))
            #expect(held.count == 3)
            // An expired lease is no longer held; a node that never registered is not listed.
            #expect(try await store.claimDueRecipients(now: now, limit: 1, node: "b", leaseUntil: now.addingTimeInterval(-1)).count == 1)
            #expect(try await store.claimDueRecipients(now: now, limit: 1, node: "z", leaseUntil: now.addingTimeInterval(3600)).count == 1)
            #expect(try await store.nodes(deliveriesSince: t0).map(\.leasedRecipients) == [3, 0, 0])
            // An outcome ends the lease.
            try await store.record([RecipientOutcome(recipientID: held[0].id, messageID: message.id, kind: .sent, at: now)])
            let nodes = try await store.nodes(deliveriesSince: t0)
            #expect(nodes.map(\.node.id) == ["a", "b", "c"])
            #expect(nodes.map(\.leasedRecipients) == [2, 0, 0])
        }
    }

    @Test(arguments: StoreFactory.all)
    func deliveriesAreCountedForTheNodeTheirEventsNameSinceTheTimeAsked(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let message = sampleMessage(recipients: 7, at: t0)
            try await store.commitAndWait([message])
            try await store.heartbeat(node("a", at: t0))
            try await store.heartbeat(node("b", at: t0))
            let ids = message.recipients.map(\.id)
            func outcome(_ index: Int, _ kind: RecipientOutcome.Kind, after seconds: TimeInterval, node: String?) -> RecipientOutcome {
                var details = ["remote_host": "mx.example.net"]
                details["node"] = node
                return RecipientOutcome(
                    recipientID: ids[index], messageID: message.id, kind: kind, at: t0.addingTimeInterval(seconds), details: details)
            }
            try await store.record([
                outcome(0, .sent, after: 10, node: "a"),
                outcome(1, .failed, after: 10, node: "a"),
                outcome(2, .deferred(nextAttemptAt: t0.addingTimeInterval(100)), after: 10, node: "a"),
                outcome(3, .sent, after: 1, node: "a"),
                outcome(4, .sent, after: 10, node: "b"),
                // Not a delivery outcome, or no node named: not counted.
                outcome(5, .suppressed, after: 10, node: "a"),
                outcome(6, .deferred(nextAttemptAt: t0.addingTimeInterval(100)), after: 10, node: nil),
            ])
            try await store.record([RecipientOutcome(recipientID: ids[6], messageID: message.id, kind: .sent, at: t0.addingTimeInterval(20))])
            #expect(try await store.nodes(deliveriesSince: t0.addingTimeInterval(5)).map(\.deliveries) == [3, 1])
            #expect(try await store.nodes(deliveriesSince: t0).map(\.deliveries) == [4, 1])
            #expect(try await store.nodes(deliveriesSince: t0.addingTimeInterval(10)).map(\.deliveries) == [3, 1])
            #expect(try await store.nodes(deliveriesSince: t0.addingTimeInterval(11)).map(\.deliveries) == [0, 0])
        }
    }

    @Test(arguments: StoreFactory.all)
    func removingANodeReleasesItsLeases(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let now = Date()
            let message = sampleMessage(recipients: 3, at: now.addingTimeInterval(-60))
            try await store.commitAndWait([message])
            try await store.heartbeat(node("a", at: now))
            try await store.heartbeat(node("b", at: now))
            let held = try await store.claimDueRecipients(now: now, limit: 2, node: "a", leaseUntil: now.addingTimeInterval(3600))
            #expect(try await store.claimDueRecipients(now: now, limit: 2, node: "b", leaseUntil: now.addingTimeInterval(3600)).count == 1)
            #expect(try await store.removeNode("a"))
            let nodes = try await store.nodes(deliveriesSince: t0)
            #expect(nodes.map(\.node.id) == ["b"])
            #expect(nodes.map(\.leasedRecipients) == [1])
            #expect(!(try await store.removeNode("a")))
            #expect(!(try await store.removeNode("nobody")))
            // Claimable at once by another node, not only when the leases expire.
            let again = try await store.claimDueRecipients(now: now, limit: 10, node: "c", leaseUntil: now.addingTimeInterval(3600))
            #expect(Set(again.map(\.id)) == Set(held.map(\.id)))
        }
    }

    // MARK: Node numbers

    @Test(arguments: StoreFactory.all)
    func eachNodeKeepsItsNumberAndRemovingOneFreesIt(_ factory: StoreFactory) async throws {
        try await factory.withStore { store async throws in
            #expect(try await store.nodeNumber(of: "a") == 0)
            #expect(try await store.nodeNumber(of: "b") == 1)
            #expect(try await store.nodeNumber(of: "c") == 2)
            #expect(try await store.nodeNumber(of: "a") == 0)
            // A node that only ever got a number is still removed, and its number is free again.
            #expect(try await store.removeNode("b"))
            #expect(try await store.nodeNumber(of: "d") == 1)
            #expect(try await store.nodeNumber(of: "c") == 2)
            #expect(try await store.nodeNumber(of: "e") == 3)
        }
    }

    /// Nodes starting at once (two stores on one database) never get one number.
    @Test(arguments: StoreFactory.all)
    func nodesStartingAtOnceGetDistinctNumbers(_ factory: StoreFactory) async throws {
        try await factory.withStores(2) { stores async throws in
            let numbers = try await withThrowingTaskGroup(of: (String, Int).self) { group in
                for index in 0..<12 {
                    let store = stores[index % stores.count]
                    group.addTask { ("node-\(index)", try await store.nodeNumber(of: "node-\(index)")) }
                }
                var numbers: [String: Int] = [:]
                for try await (node, number) in group { numbers[node] = number }
                return numbers
            }
            #expect(Set(numbers.values) == Set(0..<12))
            for (node, number) in numbers {
                #expect(try await stores[1].nodeNumber(of: node) == number)
            }
        }
    }

    @Test(arguments: StoreFactory.all)
    func whenEveryNumberIsTakenANewNodeIsRefused(_ factory: StoreFactory) async throws {
        try await factory.withStore { store async throws in
            for index in 0..<TimeOrderedID.nodeCount {
                _ = try await store.nodeNumber(of: "n\(index)")
            }
            await #expect(throws: StoreError.self) { try await store.nodeNumber(of: "one-too-many") }
            #expect(try await store.nodeNumber(of: "n7") == 7)
        }
    }

    // MARK: Shared secrets

    @Test(arguments: StoreFactory.all)
    func theFirstSecretProposedIsTheOneKept(_ factory: StoreFactory) async throws {
        try await factory.withStore { store async throws in
            let bytes = (0..<512).map { UInt8(truncatingIfNeeded: $0) }
            #expect(try await store.sharedSecret(named: "tracking", proposed: bytes) == bytes)
            #expect(try await store.sharedSecret(named: "tracking", proposed: [1, 2, 3]) == bytes)
            #expect(try await store.sharedSecret(named: "webhooks", proposed: [1, 2, 3]) == [1, 2, 3])
            #expect(try await store.sharedSecret(named: "tracking", proposed: []) == bytes)
        }
    }

    /// Nodes starting at once (two stores on one database) all get the value of one of them.
    @Test(arguments: StoreFactory.all)
    func nodesAskingForASecretAtOnceGetOneValue(_ factory: StoreFactory) async throws {
        try await factory.withStores(2) { stores in
            for round in 0..<10 {
                let name = "secret-\(round)"
                let values = try await withThrowingTaskGroup(of: [UInt8].self) { group in
                    for (index, store) in (stores + stores).enumerated() {
                        group.addTask { try await store.sharedSecret(named: name, proposed: [UInt8(index), UInt8(round)]) }
                    }
                    var values: [[UInt8]] = []
                    for try await value in group { values.append(value) }
                    return values
                }
                #expect(values.count == 4)
                #expect(Set(values).count == 1)
                let kept = try #require(values.first)
                #expect(kept.count == 2 && kept[0] < 4 && kept[1] == UInt8(round))
                for store in stores {
                    #expect(try await store.sharedSecret(named: name, proposed: [9]) == kept)
                }
            }
        }
    }

    // MARK: Webhook claims

    @Test(arguments: StoreFactory.all)
    func claimedWebhooksAreDueAgainOnlyAfterTheLeaseOrTheirAttempt(_ factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let a = inbound(at: t0)
            let b = inbound(at: t0.addingTimeInterval(1))
            let c = inbound(at: t0.addingTimeInterval(2))
            try await store.commitInbound([c, a, b])
            func claim(at seconds: TimeInterval, limit: Int = 10, lease: TimeInterval = 60) async throws -> [InboundMessageID] {
                let now = t0.addingTimeInterval(seconds)
                return try await store.claimDueWebhooks(now: now, limit: limit, leaseUntil: now.addingTimeInterval(lease)).map(\.id)
            }
            #expect(try await claim(at: -1).isEmpty)
            #expect(try await claim(at: 5, limit: 2) == [a.id, b.id])
            #expect(try await claim(at: 5) == [c.id])
            // Leased until 65.
            #expect(try await claim(at: 64).isEmpty)
            // The attempts recorded set the real next times: delivered, and due again at 30.
            try await store.recordWebhookAttempt(a.id, WebhookAttempt(at: t0.addingTimeInterval(6), status: 204, error: nil, nextAttemptAt: nil))
            try await store.recordWebhookAttempt(
                b.id, WebhookAttempt(at: t0.addingTimeInterval(6), status: 503, error: "HTTP 503", nextAttemptAt: t0.addingTimeInterval(30)))
            #expect(try await claim(at: 29).isEmpty)
            #expect(try await claim(at: 30) == [b.id])
            // c's lease ended without an attempt (its node died): due again; b is leased until 90.
            #expect(try await claim(at: 65) == [c.id])
            #expect(try await claim(at: 89).isEmpty)
            #expect(try await claim(at: 90) == [b.id])
            try await store.recordWebhookAttempt(b.id, WebhookAttempt(at: t0.addingTimeInterval(91), status: nil, error: "refused", nextAttemptAt: nil))
            try await store.recordWebhookAttempt(c.id, WebhookAttempt(at: t0.addingTimeInterval(91), status: 200, error: nil, nextAttemptAt: nil))
            #expect(try await claim(at: 1_000_000).isEmpty)

            let byID = Dictionary(uniqueKeysWithValues: try await store.inboundMessages(limit: 10, scope: .all).map { ($0.id, $0.webhook) })
            #expect(byID[a.id.description]??.state == "delivered" && byID[a.id.description]??.attempts == 1)
            #expect(byID[b.id.description]??.state == "gave_up" && byID[b.id.description]??.attempts == 2)
            #expect(byID[c.id.description]??.state == "delivered" && byID[c.id.description]??.attempts == 1)
            #expect(byID.values.allSatisfy { $0?.nextAttemptAt == nil })
        }
    }

    /// Nodes claiming at once (two stores on one database, two claims each) never take one
    /// message twice, and between them take every due one.
    @Test(arguments: StoreFactory.all)
    func concurrentWebhookClaimsNeverTakeOneMessageTwice(_ factory: StoreFactory) async throws {
        try await factory.withStores(2) { stores in
            let messages = (0..<30).map { inbound(at: t0.addingTimeInterval(Double($0))) }
            for store in stores.prefix(1) { try await store.commitInbound(messages) }
            let now = t0.addingTimeInterval(100)
            let claims = try await withThrowingTaskGroup(of: [InboundMessageID].self) { group in
                for store in stores + stores {
                    group.addTask {
                        try await store.claimDueWebhooks(now: now, limit: 10, leaseUntil: now.addingTimeInterval(60)).map(\.id)
                    }
                }
                var claims: [[InboundMessageID]] = []
                for try await claim in group { claims.append(claim) }
                return claims
            }
            let claimed = claims.flatMap { $0 }
            #expect(claimed.count == Set(claimed).count)
            #expect(Set(claimed) == Set(messages.map(\.id)))
            // Each claim returns its messages oldest due first.
            #expect(claims.allSatisfy { $0 == $0.sorted() })
        }
    }
}
