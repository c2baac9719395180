// IntakeCommitBenchmark — how long an intake commit (the wait before a client's 250) takes
// on the SQLite store when idle and while the tracking endpoints flood the same writer with
// opens and clicks.
//
// Creates a store in a temporary directory with 1,000 recipients to record engagement for,
// then commits messages one at a time (a 5 KB message with two recipients, as intake's group
// committer does under light load) and records each commit's latency: first idle, then while
// another task writes engagement batches back to back, as `EngagementRecorder` does when
// every flush finds thousands of events. Prints p50, p99 and max of both phases and their
// ratios, over several interleaved rounds, and the events the flood stored per second.
//
//   swift run -c release --package-path Benchmarks IntakeCommitBenchmark [rounds] [commits] [batch] [rate]
//   (default 3 rounds of 500 commits per phase, engagement batches of 6,400 events back to
//   back; a rate in events/s writes rate/10 events every 100 ms instead)
//
// FLOOD_SEPARATE=1 sends the flood to a second database file: no shared writer, WAL or
// fsync, only the machine's cores and disk — the bound any store layout could reach.
import Foundation
import Synchronization
import TernCore
import TernStoreSQLite

let arguments = CommandLine.arguments.dropFirst()
let rounds = arguments.first.flatMap(Int.init) ?? 3
let commitsPerPhase = arguments.dropFirst().first.flatMap(Int.init) ?? 500
let batchSize = arguments.dropFirst(2).first.flatMap(Int.init) ?? 6_400
/// Events per second the flood offers, as `EngagementRecorder` flushes them every 100 ms;
/// 0 writes batches of `batchSize` back to back (the store's own limit).
let floodRate = arguments.dropFirst(3).first.flatMap(Int.init) ?? 0

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tern-commit-bench-\(getpid())")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: directory) }
let store = try SQLiteStore(path: directory.appendingPathComponent("tern.sqlite").path)
let separate = ProcessInfo.processInfo.environment["FLOOD_SEPARATE"] == "1"
let floodStore = separate ? try SQLiteStore(path: directory.appendingPathComponent("flood.sqlite").path) : store

/// The store's one commit form, as intake's group committer calls it.
func commit(_ messages: [QueuedMessage]) async throws {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        store.commit(messages) { continuation.resume(with: $0) }
    }
}

var targets: [(MessageID, RecipientID)] = []
for _ in 0..<10 {
    let id = MessageID.random()
    let message = QueuedMessage(
        id: id, messageIDHeader: "<\(id)@bench>", mailFrom: "news@news.example",
        recipients: (0..<100).map { QueuedRecipient(id: .random(), address: "reader\($0)@example.net") },
        content: Array("Subject: news\r\n\r\n<p>hello</p>\r\n".utf8), credential: "app", clientIP: "127.0.0.1",
        receivedAt: Date(), eightBitMIME: false, smtpUTF8: false, fromDomain: "news.example")
    try await commit([message])
    if separate { try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in floodStore.commit([message]) { c.resume(with: $0) } } }
    targets += message.recipients.map { (id, $0.id) }
}
let recipients = targets

let body = Array(("Subject: order 1234\r\nFrom: shop@shop.example\r\n\r\n" + String(repeating: "Thank you for your order. ", count: 200) + "\r\n").utf8)
func message() -> QueuedMessage {
    QueuedMessage(
        id: .random(), messageIDHeader: "<\(UUID())@bench>", mailFrom: "shop@shop.example",
        recipients: [QueuedRecipient(id: .random(), address: "buyer@example.net"), QueuedRecipient(id: .random(), address: "copy@example.org")],
        content: body, credential: "app", clientIP: "127.0.0.1", receivedAt: Date(), eightBitMIME: false, smtpUTF8: false,
        fromDomain: "shop.example")
}

let userAgent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
func engagementBatch(_ size: Int) -> [EngagementEvent] {
    (0..<size).map { n in
        let (message, recipient) = recipients[Int.random(in: 0..<recipients.count)]
        return EngagementEvent(
            type: n % 3 == 0 ? .click : .open, messageID: message, recipientID: recipient, at: Date(),
            details: EngagementDetails(
                machine: false, reason: "human", url: n % 3 == 0 ? "https://shop.example/sale" : nil,
                link: n % 3 == 0 ? 0 : nil, ip: "198.51.100.\(n % 250)", userAgent: userAgent))
    }
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1e3 + Double(duration.components.attoseconds) / 1e15
}

/// Commit latencies in milliseconds, one message at a time.
func commitLatencies(_ count: Int) async throws -> [Double] {
    var latencies: [Double] = []
    latencies.reserveCapacity(count)
    for _ in 0..<count {
        let next = message()
        let start = ContinuousClock.now
        try await commit([next])
        latencies.append(milliseconds(ContinuousClock.now - start))
    }
    return latencies.sorted()
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

print("intake commits on SQLite: \(rounds) rounds of \(commitsPerPhase) commits idle, then \(commitsPerPhase) under an engagement flood (\(floodRate > 0 ? "\(floodRate) events/s" : "batches of \(batchSize) back to back")\(separate ? ", into a separate database" : ""))")
var ratios50: [Double] = []
var ratios99: [Double] = []
for round in 1...rounds {
    let idle = try await commitLatencies(commitsPerPhase)
    let stop = Atomic(false)
    let stored = Atomic(0)
    let flood = Task {
        var next = ContinuousClock.now
        while !stop.load(ordering: .relaxed) {
            let events = engagementBatch(floodRate > 0 ? floodRate / 10 : batchSize)
            try await floodStore.recordEngagement(events)
            stored.add(events.count, ordering: .relaxed)
            if floodRate > 0 {
                next = next.advanced(by: .milliseconds(100))
                try await Task.sleep(until: next, clock: .continuous)
            }
        }
    }
    let floodStart = ContinuousClock.now
    let loaded = try await commitLatencies(commitsPerPhase)
    let floodSeconds = milliseconds(ContinuousClock.now - floodStart) / 1e3
    stop.store(true, ordering: .relaxed)
    try await flood.value
    let (i50, i99, l50, l99) = (percentile(idle, 0.5), percentile(idle, 0.99), percentile(loaded, 0.5), percentile(loaded, 0.99))
    ratios50.append(l50 / i50)
    ratios99.append(l99 / i99)
    print(String(
        format: "  round %d: idle p50 %.3f p99 %.3f max %.3f ms | flood p50 %.3f p99 %.3f max %.3f ms | ratio p50 %.2f p99 %.2f | flood stored %.0f events/s",
        round, i50, i99, idle.last ?? 0, l50, l99, loaded.last ?? 0, l50 / i50, l99 / i99,
        Double(stored.load(ordering: .relaxed)) / floodSeconds))
}
let median = { (values: [Double]) in values.sorted()[values.count / 2] }
print(String(format: "median ratio under flood / idle: p50 %.2f, p99 %.2f (goal: both <= 1.10)", median(ratios50), median(ratios99)))
try await store.close()
