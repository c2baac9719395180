// ReportBenchmark — how many bounce and complaint reports per second ReportParser reads.
//
// Reads every fixture in Tests/MailReportsTests/Fixtures (DSNs, ARF complaints, plain-text
// bounces, auto-replies), parses each one `iterations` times per round, and prints the median of
// several rounds in reports per second overall, plus the slowest fixtures.
//
//   swift run -c release --package-path Benchmarks ReportBenchmark [rounds] [fixtures-directory]
//   swift run --package-path Benchmarks ReportBenchmark --show FILE...     (prints how each message reads, for writing fixtures)
import MailMessage
import MailReports

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes of a file, or nil.
func readFile(_ path: String) -> [UInt8]? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    return bytes
}

/// The `.eml` files in a directory, sorted.
func emlFiles(in directory: String) -> [String] {
    guard let dir = opendir(directory) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name.hasSuffix(".eml") { names.append(name) }
    }
    return names.sorted()
}

/// Prints what a report reads as, one line per item.
func show(_ path: String) {
    guard let bytes = readFile(path) else {
        print("\(path): cannot read")
        return
    }
    let report = ReportParser.parse(bytes)
    print("\(path): \(report.kind.rawValue) format=\(report.format) reportingMTA=\(report.reportingMTA ?? "-") envid=\(report.originalEnvelopeID ?? "-")")
    for r in report.recipients {
        print("  \(r.address) \(r.action.rawValue) status=\(r.status ?? "-") class=\(r.bounceClass?.rawValue ?? "-") suppress=\(r.suppress)"
            + " orcpt=\(r.originalRecipient ?? "-") mta=\(r.remoteMTA ?? "-")")
        print("    diagnostic: \(r.diagnostic ?? "-")")
    }
    if let f = report.feedback {
        print("  feedback: type=\(f.feedbackType) ua=\(f.userAgent ?? "-") from=\(f.originalMailFrom ?? "-") rcpt=\(f.originalRcptTo) ip=\(f.sourceIP ?? "-") domain=\(f.reportedDomain ?? "-")")
    }
    if let r = report.returned {
        print("  returned: id=\(r.messageID ?? "-") tern=\(r.ternID ?? "-") path=\(r.returnPath ?? "-") from=\(r.from ?? "-") to=\(r.to ?? "-") subject=\(r.subject ?? "-")")
    }
}

let arguments = CommandLine.arguments
if arguments.count > 1, arguments[1] == "--show" {
    for path in arguments.dropFirst(2) { show(path) }
    exit(0)
}
let rounds = arguments.count > 1 ? max(1, Int(arguments[1]) ?? 5) : 5
let directory = arguments.count > 2 ? arguments[2] : "Tests/MailReportsTests/Fixtures"
let names = emlFiles(in: directory)
guard !names.isEmpty else {
    print("no .eml fixtures in \(directory) (run from the package root, or pass the directory)")
    exit(1)
}
let fixtures: [(name: String, bytes: [UInt8])] = names.compactMap { name in readFile(directory + "/" + name).map { (name, $0) } }
let totalBytes = fixtures.reduce(0) { $0 + $1.bytes.count }

// Check the work once: every fixture reads as something.
var kinds: [String: Int] = [:]
for fixture in fixtures { kinds[ReportParser.parse(fixture.bytes).kind.rawValue, default: 0] += 1 }

let iterations = 200
let clock = ContinuousClock()
func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

var rates: [Double] = []
var sink = 0
for _ in 0..<rounds {
    let elapsed = clock.measure {
        for _ in 0..<iterations {
            for fixture in fixtures { sink &+= ReportParser.parse(fixture.bytes).recipients.count }
        }
    }
    rates.append(Double(iterations * fixtures.count) / seconds(elapsed))
}
rates.sort()
let median = rates[rates.count / 2]

// The MIME parse alone (MailMessage), for scale.
var mimeRates: [Double] = []
for _ in 0..<rounds {
    let elapsed = clock.measure {
        for _ in 0..<iterations {
            for fixture in fixtures { sink &+= MailMessage(fixture.bytes).allParts.count }
        }
    }
    mimeRates.append(Double(iterations * fixtures.count) / seconds(elapsed))
}
mimeRates.sort()
let mimeMedian = mimeRates[mimeRates.count / 2]

// The slowest fixtures, per report.
var perFixture: [(name: String, micros: Double)] = []
for fixture in fixtures {
    let elapsed = clock.measure {
        for _ in 0..<iterations { sink &+= ReportParser.parse(fixture.bytes).recipients.count }
    }
    perFixture.append((fixture.name, seconds(elapsed) * 1e6 / Double(iterations)))
}
perFixture.sort { $0.micros > $1.micros }

/// One decimal place, without Foundation.
func format(_ value: Double) -> String {
    let tenths = Int(value * 10 + 0.5)
    return "\(tenths / 10).\(tenths % 10)"
}

let mix = kinds.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
print("ReportParser: \(fixtures.count) fixtures (\(totalBytes) B; \(mix)), \(iterations) passes per round, median of \(rounds) rounds")
print("\(Int(median)) reports/s (min \(Int(rates[0])), max \(Int(rates[rates.count - 1]))), \(format(1e6 / median)) µs/report on average, "
    + "\(format(median * Double(totalBytes) / Double(fixtures.count) / 1_048_576)) MiB/s")
print("of which the MIME parse (MailMessage) alone: \(format(1e6 / mimeMedian)) µs/report")
print("slowest: " + perFixture.prefix(3).map { "\($0.name) \(format($0.micros)) µs" }.joined(separator: ", "))
if sink == 42 { print("") } // keep the work
