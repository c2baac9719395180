// EngagementStoreBenchmark — what storing opens and clicks costs the SQLite store's writer.
//
// Creates a store in a temporary directory, commits messages with 1,000 recipients in all,
// then writes batches of engagement events as the tracking endpoints make them (opens and
// clicks of random recipients, with the details a request records), one `recordEngagement`
// per batch as `EngagementRecorder` does. Prints, per round, the process's CPU time and the
// wall time per event, and the median over the rounds. The writer's pauses between
// statements count in wall time, not in CPU time.
//
//   swift run -c release --package-path Benchmarks EngagementStoreBenchmark [rounds] [batch size]    (default 10 rounds of 6,400)
import Foundation
import TernCore
import TernStoreSQLite

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func cpuSeconds() -> Double {
    var usage = rusage()
    #if canImport(Glibc)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
    let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    return user + system
}

let arguments = CommandLine.arguments.dropFirst()
let rounds = arguments.first.flatMap(Int.init) ?? 10
let batchSize = arguments.dropFirst().first.flatMap(Int.init) ?? 6_400

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tern-engagement-bench-\(getpid())")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: directory) }
let store = try SQLiteStore(path: directory.appendingPathComponent("tern.sqlite").path)

// Ten messages of a hundred recipients, as a newsletter's batches would be.
var recipients: [(MessageID, RecipientID)] = []
for _ in 0..<10 {
    let id = MessageID.random()
    let message = QueuedMessage(
        id: id, messageIDHeader: "<\(id)@bench>", mailFrom: "news@news.example",
        recipients: (0..<100).map { QueuedRecipient(id: .random(), address: "reader\($0)@example.net") },
        content: Array("Subject: news\r\n\r\n<p>hello</p>\r\n".utf8), credential: "app", clientIP: "127.0.0.1",
        receivedAt: Date(), eightBitMIME: false, smtpUTF8: false, fromDomain: "news.example",
        links: ["https://shop.example/spring-sale?utm_source=newsletter&utm_medium=email"])
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        store.commit([message]) { continuation.resume(with: $0) }
    }
    recipients += message.recipients.map { (id, $0.id) }
}

let userAgent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
let targets = recipients
func batch() -> [EngagementEvent] {
    (0..<batchSize).map { n in
        let (message, recipient) = targets[Int.random(in: 0..<targets.count)]
        let click = n % 3 == 0
        return EngagementEvent(
            type: click ? .click : .open, messageID: message, recipientID: recipient, at: Date(),
            details: EngagementDetails(
                machine: false, reason: "human", url: click ? "https://shop.example/spring-sale?utm_source=newsletter&utm_medium=email" : nil,
                link: click ? 0 : nil, ip: "198.51.100.\(n % 250)", userAgent: userAgent))
    }
}

print("engagement events into SQLite: \(rounds) rounds of one batch of \(batchSize) events (2 opens : 1 click, 1,000 recipients)")
var cpuPerEvent: [Double] = []
var wallPerEvent: [Double] = []
for round in 1...rounds {
    let events = batch()
    let cpu0 = cpuSeconds()
    let wall0 = ContinuousClock.now
    try await store.recordEngagement(events)
    let wall = ContinuousClock.now - wall0
    let cpu = (cpuSeconds() - cpu0) * 1e6 / Double(batchSize)
    let wallMicroseconds = (Double(wall.components.seconds) * 1e6 + Double(wall.components.attoseconds) / 1e12) / Double(batchSize)
    cpuPerEvent.append(cpu)
    wallPerEvent.append(wallMicroseconds)
    print(String(format: "  round %2d: %.2f µs CPU, %.2f µs wall per event", round, cpu, wallMicroseconds))
}
let median = { (values: [Double]) in values.sorted()[values.count / 2] }
print(String(format: "median: %.2f µs CPU per event (%.0f events per CPU second), %.2f µs wall", median(cpuPerEvent), 1e6 / median(cpuPerEvent), median(wallPerEvent)))
try await store.close()
