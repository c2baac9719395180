import Foundation
import Logging
import NIOCore
import NIOPosix
import SMTPCore
@testable import SMTPNIO
import Synchronization
import Testing

// MARK: Real peers: Postfix smtp-sink and a Python aiosmtpd script, run as subprocesses.

enum ClientTestTools {
    static let smtpSink = "/usr/sbin/smtp-sink"
    static let isCI = ProcessInfo.processInfo.environment["CI"] != nil

    static var hasSMTPSink: Bool { FileManager.default.isExecutableFile(atPath: smtpSink) }

    static let hasAIOSMTPD: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import aiosmtpd"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus == 0
        } catch {
            return false
        }
    }()

    static let hasOpenSSL = FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")

    /// Run when the tool is there; on CI, run anyway so that `#require` fails with a clear message.
    static func enabled(_ available: Bool) -> Bool { available || isCI }
}

/// A receiving server in a subprocess, stopped with SIGTERM.
final class PeerProcess: Sendable {
    let port: Int
    let directory: URL
    private let process: Process

    private init(process: Process, port: Int, directory: URL) {
        self.process = process
        self.port = port
        self.directory = directory
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tern-smtp-client-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        // smtp-sink drops privileges to nobody before writing its dumps.
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: url.path)
        return url
    }

    /// `smtp-sink [options] 127.0.0.1:0 64`, dumping each message into the directory. It
    /// binds a port of the kernel's choosing, read from its listening socket in /proc: no
    /// port is picked first and bound later, when another process may have taken it.
    static func smtpSink(_ options: [String] = [], group: any EventLoopGroup) async throws -> PeerProcess {
        try #require(ClientTestTools.hasSMTPSink, "Postfix smtp-sink is not installed at \(ClientTestTools.smtpSink) (apt-get install postfix)")
        let directory = try temporaryDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ClientTestTools.smtpSink)
        process.arguments = ["-u", "nobody", "-d", directory.path + "/%H%M%S."] + options + ["127.0.0.1:0", "64"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, process.isRunning {
            if let port = listeningPort(of: process.processIdentifier) {
                return PeerProcess(process: process, port: port, directory: directory)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        kill(process.processIdentifier, SIGKILL)
        throw PeerError(message: "smtp-sink did not listen (running: \(process.isRunning))")
    }

    /// The port of the IPv4 TCP socket process `pid` listens on, from /proc/PID/fd and /proc/net/tcp.
    static func listeningPort(of pid: Int32) -> Int? {
        guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { return nil }
        let inodes = Set(fds.compactMap { fd -> String? in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                target.hasPrefix("socket:[")
            else { return nil }
            return String(target.dropFirst(8).dropLast())
        })
        guard !inodes.isEmpty, let table = try? String(contentsOfFile: "/proc/\(pid)/net/tcp", encoding: .utf8) else { return nil }
        // "sl local_address rem_address st ... uid timeout inode": local is HEXIP:HEXPORT, 0A is LISTEN.
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 9, fields[3] == "0A", inodes.contains(String(fields[9])),
                let port = fields[1].split(separator: ":").last.flatMap({ Int($0, radix: 16) })
            else { continue }
            return port
        }
        return nil
    }

    /// The aiosmtpd script below; it prints its port once listening.
    static func aiosmtpd(_ options: [String] = []) throws -> PeerProcess {
        try #require(ClientTestTools.hasAIOSMTPD, "Python aiosmtpd is not installed (pip install aiosmtpd)")
        let directory = try temporaryDirectory()
        let script = directory.appendingPathComponent("peer.py")
        try aiosmtpdScript.write(to: script, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, "--log", directory.appendingPathComponent("messages.jsonl").path] + options
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let data = stdout.fileHandleForReading.availableData
            if data.isEmpty { break }
            line.append(data)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            kill(process.processIdentifier, SIGKILL)
            throw PeerError(message: "aiosmtpd peer did not start: \(text)")
        }
        return PeerProcess(process: process, port: port, directory: directory)
    }

    struct PeerError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// SIGKILL: the test process blocks SIGTERM, and children inherit the blocked mask.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// smtp-sink's dumps, oldest first.
    func sinkDumps() throws -> [String] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".") && !$0.hasSuffix(".py") && !$0.hasSuffix(".jsonl") }
        return try files.sorted().map { try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8) }
    }

    /// What the aiosmtpd peer received: one JSON object per message.
    func receivedMessages() throws -> [[String: Any]] {
        let url = directory.appendingPathComponent("messages.jsonl")
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    /// A self-signed certificate for `localhost` (and its key) in the peer's directory.
    func makeCertificate() throws -> (certificate: String, key: String) {
        try #require(ClientTestTools.hasOpenSSL, "openssl is not installed")
        let certificate = directory.appendingPathComponent("cert.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate, "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-addext", "basicConstraints=critical,CA:TRUE",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "openssl could not make a certificate")
        return (certificate, key)
    }
}

/// A receiving MX for the tests: recipients named bad* get 550, later* get 450, others 250.
/// `--tls CERT KEY` offers STARTTLS, `--smtputf8` offers SMTPUTF8, `--size N` advertises SIZE N,
/// `--drop-data` drops the connection at the end of data, `--greet421` refuses every session.
let aiosmtpdScript = #"""
import argparse, asyncio, json, ssl, sys
from aiosmtpd.smtp import SMTP

parser = argparse.ArgumentParser()
parser.add_argument("--log", required=True)
parser.add_argument("--tls", nargs=2)
parser.add_argument("--smtputf8", action="store_true")
parser.add_argument("--size", type=int, default=33554432)
parser.add_argument("--drop-data", action="store_true")
parser.add_argument("--greet421", action="store_true")
args = parser.parse_args()

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("bad"):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if local.startswith("later"):
            return "450 4.2.1 <%s>: Recipient address rejected: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if args.drop_data:
            server.transport.close()
            return "250 never seen"
        with open(args.log, "a") as log:
            log.write(json.dumps({
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "options": envelope.mail_options,
                "tls": session.ssl is not None,
                "content": envelope.content.decode("utf-8", "surrogateescape"),
            }) + "\n")
        return "250 2.0.0 Ok: queued as TEST"

async def refuse(reader, writer):
    writer.write(b"421 4.3.2 Service not available, closing transmission channel\r\n")
    await writer.drain()
    writer.close()

async def main():
    loop = asyncio.get_running_loop()
    if args.greet421:
        server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    else:
        context = None
        if args.tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(args.tls[0], args.tls[1])
        server = await loop.create_server(
            lambda: SMTP(Handler(), hostname="peer.test", enable_SMTPUTF8=args.smtputf8, tls_context=context,
                         data_size_limit=args.size, decode_data=False),
            "127.0.0.1", 0)
    print("PORT %d" % server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""#

/// Polls `condition` every 10 ms until it holds (true) or `timeout` passes (false).
func poll(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}

func address(_ text: String) -> SMTPMailbox {
    let parts = text.split(separator: "@", maxSplits: 1)
    return SMTPMailbox(localPart: String(parts[0]), domain: parts.count > 1 ? String(parts[1]) : nil)
}

func message(to recipients: [String], body: String = "Subject: test\r\n\r\nHello\r\n") -> SMTPOutgoingMessage {
    SMTPOutgoingMessage(from: .mailbox(address("sender@tern.test")), to: recipients.map(address), content: ByteBuffer(string: body))
}

func describe(_ outcomes: [SMTPDeliveryOutcome]) -> [String] {
    outcomes.map { "\($0.recipient) \($0.status) \($0.code)\($0.enhancedStatusCode.map { " \($0)" } ?? "")" }
}

/// A body whose lines start with dots, including one that is just ".".
let dottedBody = "Subject: dots\r\n\r\nfirst\r\n.\r\n..two\r\n.three\r\nlast"

func withClientGroup(_ body: (any EventLoopGroup) async throws -> Void) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    do {
        try await body(group)
    } catch {
        try await group.shutdownGracefully()
        throw error
    }
    try await group.shutdownGracefully()
}

let clientLogger = Logger(label: "smtp-client-test")
let testClientConfiguration = SMTPClientConfiguration(localHostname: "client.tern.test")

@Suite(.timeLimit(.minutes(1)), .serialized)
struct SMTPClientSmtpSinkTests {
    @Test(.enabled(if: ClientTestTools.enabled(ClientTestTools.hasSMTPSink)))
    func pipelinedMessagesOnOneConnection() async throws {
        try await withClientGroup { group in
            let sink = try await PeerProcess.smtpSink(group: group)
            defer { sink.stop() }
            let connection = try await SMTPClientConnection.connect(
                host: "127.0.0.1", port: sink.port, configuration: testClientConfiguration, group: group, logger: clientLogger
            )
            #expect(connection.capabilities.pipelining)
            #expect(!connection.tlsActive)
            let first = try await connection.send(message(to: ["a@d.test", "b@d.test"], body: dottedBody))
            #expect(describe(first) == ["a@d.test sent 250 2.0.0", "b@d.test sent 250 2.0.0"])
            #expect(first.allSatisfy { $0.remoteHost == "127.0.0.1" && !$0.tlsUsed && $0.isRemoteReply })
            let second = try await connection.send(message(to: ["c@d.test"], body: "Subject: 8bit\r\n\r\ncaf\u{e9}\r\n"))
            #expect(describe(second) == ["c@d.test sent 250 2.0.0"])
            // A recipient that needs SMTPUTF8: smtp-sink does not offer it, so nothing is sent.
            let third = try await connection.send(message(to: ["j\u{f6}rg@d.test"]))
            #expect(describe(third) == ["j\u{f6}rg@d.test failed 550 5.6.7"])
            #expect(third.first?.isRemoteReply == false)
            let fourth = try await connection.send(message(to: ["d@d.test"]))
            #expect(describe(fourth) == ["d@d.test sent 250 2.0.0"])
            await connection.quit()
            #expect(!connection.isOpen)

            // smtp-sink writes its dumps on its own time: until all three are there and complete.
            var dumps: [String] = []
            #expect(try await poll {
                dumps = try sink.sinkDumps()
                return dumps.count == 3 && dumps.contains { $0.contains("\nlast\n") }
                    && dumps.contains { $0.contains("\ncaf\u{e9}\n") } && dumps.contains { $0.contains("\nHello\n") }
            }, "\(dumps)")
            #expect(dumps.count == 3)
            let dotted = try #require(dumps.first { $0.contains("Subject: dots") })
            // smtp-sink writes LF line ends; the dots arrive unstuffed, as written.
            #expect(dotted.contains("\n\nfirst\n.\n..two\n.three\nlast\n"))
            #expect(dotted.contains("X-Rcpt-Args: <a@d.test>"))
            let eightBit = try #require(dumps.first { $0.contains("Subject: 8bit") })
            #expect(eightBit.contains("X-Mail-Args: <sender@tern.test> BODY=8BITMIME"))
        }
    }

    /// A route's next hop may be a name: resolved off the caller's thread (it may be an
    /// event loop), `/etc/hosts` first; a name that does not resolve is a connection failure.
    @Test(.enabled(if: ClientTestTools.enabled(ClientTestTools.hasSMTPSink)))
    func nextHopByName() async throws {
        try await withClientGroup { group in
            let sink = try await PeerProcess.smtpSink(group: group)
            defer { sink.stop() }
            // smtp-sink listens on 127.0.0.1 only; every address of the name is tried (Happy
            // Eyeballs), so a ::1 for localhost too does no harm.
            let connection = try await SMTPClientConnection.connect(
                host: "localhost", port: sink.port, configuration: testClientConfiguration, group: group.next(),
                logger: clientLogger)
            let outcomes = try await connection.send(message(to: ["a@d.test"]))
            #expect(describe(outcomes) == ["a@d.test sent 250 2.0.0"])
            #expect(outcomes.first?.remoteHost == "localhost")
            await connection.quit()

            await #expect(throws: SMTPClientError.self) {
                try await SMTPClientConnection.connect(
                    host: "no-such-host.invalid", port: sink.port, configuration: testClientConfiguration, group: group,
                    logger: clientLogger)
            }
        }
    }

    @Test(.enabled(if: ClientTestTools.enabled(ClientTestTools.hasSMTPSink)))
    func connectionDroppedAtEndOfDataDefers() async throws {
        try await withClientGroup { group in
            let sink = try await PeerProcess.smtpSink(["-q", "."], group: group)
            defer { sink.stop() }
            let connection = try await SMTPClientConnection.connect(
                host: "127.0.0.1", port: sink.port, configuration: testClientConfiguration, group: group, logger: clientLogger
            )
            let outcomes = try await connection.send(message(to: ["a@d.test", "b@d.test"]))
            #expect(outcomes.map(\.status) == [.deferred, .deferred])
            #expect(outcomes.allSatisfy { $0.stage == .endOfData && !$0.isRemoteReply })
            await #expect(throws: SMTPClientError.self) { try await connection.send(message(to: ["c@d.test"])) }
        }
    }

    @Test(.enabled(if: ClientTestTools.enabled(ClientTestTools.hasSMTPSink)))
    func refusedRecipientsAndData() async throws {
        try await withClientGroup { group in
            // Every RCPT refused temporarily: no DATA, deferred, and the session stays usable.
            let sink = try await PeerProcess.smtpSink(["-r", "RCPT"], group: group)
            defer { sink.stop() }
            let connection = try await SMTPClientConnection.connect(
                host: "127.0.0.1", port: sink.port, configuration: testClientConfiguration, group: group, logger: clientLogger
            )
            let outcomes = try await connection.send(message(to: ["a@d.test", "b@d.test"]))
            #expect(outcomes.map(\.status) == [.deferred, .deferred])
            #expect(outcomes.allSatisfy { $0.stage == .rcpt && $0.code / 100 == 4 && $0.isRemoteReply })
            let again = try await connection.send(message(to: ["c@d.test"]))
            #expect(again.map(\.status) == [.deferred])
            await connection.quit()
        }
    }

    /// The session waits idle (long timeout) before the transaction; the transaction's short
    /// timeouts must still hold, though the timer was armed for the idle one. smtp-sink holds
    /// its replies to the pipelined MAIL, RCPT and DATA for 3 s.
    @Test(.enabled(if: ClientTestTools.enabled(ClientTestTools.hasSMTPSink)))
    func aShorterTimeoutReplacesALongerOne() async throws {
        try await withClientGroup { group in
            let sink = try await PeerProcess.smtpSink(["-w", "3"], group: group)
            defer { sink.stop() }
            var configuration = testClientConfiguration
            configuration.timeouts.idle = .seconds(30)
            configuration.timeouts.mail = .milliseconds(300)
            configuration.timeouts.rcpt = .milliseconds(300)
            configuration.timeouts.dataInitiation = .milliseconds(300)
            configuration.timeouts.command = .milliseconds(300)
            let connection = try await SMTPClientConnection.connect(
                host: "127.0.0.1", port: sink.port, configuration: configuration, group: group, logger: clientLogger
            )
            try await Task.sleep(for: .milliseconds(100))
            // Deferred without a reply: it gave up before the sink's answer at 3 s, which the
            // 30 s idle timeout would have waited for (and the message been sent).
            let outcomes = try await connection.send(message(to: ["a@d.test"]))
            #expect(outcomes.map(\.status) == [.deferred], "\(describe(outcomes))")
            #expect(outcomes.allSatisfy { !$0.isRemoteReply }, "\(describe(outcomes))")
            await connection.close()
        }
    }

    @Test(.enabled(if: ClientTestTools.enabled(ClientTestTools.hasSMTPSink)))
    func idleConnectionQuits() async throws {
        try await withClientGroup { group in
            let sink = try await PeerProcess.smtpSink(group: group)
            defer { sink.stop() }
            var configuration = testClientConfiguration
            configuration.timeouts.idle = .milliseconds(200)
            let connection = try await SMTPClientConnection.connect(
                host: "127.0.0.1", port: sink.port, configuration: configuration, group: group, logger: clientLogger
            )
            #expect(try await connection.send(message(to: ["a@d.test"])).map(\.status) == [.sent])
            // Closed by the 200 ms idle timeout, long before the sink's own (300 s).
            #expect(try await poll { !connection.isOpen })
            #expect(!connection.isOpen)
            #expect(!connection.isReadyForMessage)
            let error = await #expect(throws: SMTPClientError.self) { try await connection.send(message(to: ["b@d.test"])) }
            #expect(error?.code == .notReady)
        }
    }

    /// Readiness, read without a hop to the event loop, is published by the time `send`
    /// returns (the pool checks it to keep the session) and cleared by QUIT.
    @Test(.enabled(if: ClientTestTools.enabled(ClientTestTools.hasSMTPSink)))
    func readyForTheNextMessageAsSoonAsSendReturns() async throws {
        try await withClientGroup { group in
            let sink = try await PeerProcess.smtpSink(group: group)
            defer { sink.stop() }
            let connection = try await SMTPClientConnection.connect(
                host: "127.0.0.1", port: sink.port, configuration: testClientConfiguration, group: group, logger: clientLogger
            )
            #expect(connection.isReadyForMessage)
            for index in 0..<50 {
                #expect(try await connection.send(message(to: ["r\(index)@d.test"])).map(\.status) == [.sent])
                #expect(connection.isReadyForMessage, "after message \(index)")
            }
            await connection.quit()
            #expect(!connection.isReadyForMessage)
        }
    }
}

@Suite(.timeLimit(.minutes(1)), .serialized)
struct SMTPClientAiosmtpdTests {
    @Test(.enabled(if: ClientTestTools.enabled(ClientTestTools.hasAIOSMTPD)))
    func mixedRecipientsWithStreamedContent() async throws {
        try await withClientGroup { group in
            let peer = try PeerProcess.aiosmtpd()
            defer { peer.stop() }
            let connection = try await SMTPClientConnection.connect(
                host: "127.0.0.1", port: peer.port, configuration: testClientConfiguration, group: group, logger: clientLogger
            )
            let pieces = ["Subject: streamed\r\n\r\nfirst\r", "\n.", "\r\n..two\r\n", ".three\r\n"]
            let chunks = AsyncStream<ByteBuffer> { continuation in
                for piece in pieces { continuation.yield(ByteBuffer(string: piece)) }
                continuation.finish()
            }
            let envelope = SMTPOutgoingEnvelope(
                reversePath: .mailbox(address("sender@tern.test")),
                recipients: ["ok@d.test", "later@d.test", "bad@d.test", "ok2@d.test"].map(address),
                contentSize: pieces.joined().utf8.count
            )
            let outcomes = try await connection.send(SMTPOutgoingMessage(envelope: envelope, content: .chunks(SMTPContentChunks(chunks))))
            #expect(describe(outcomes) == [
                "ok@d.test sent 250", "later@d.test deferred 450", "bad@d.test failed 550", "ok2@d.test sent 250",
            ])
            // aiosmtpd does not advertise ENHANCEDSTATUSCODES: the remote's words are kept whole.
            #expect(outcomes[2].text == "5.1.1 <bad@d.test>: Recipient address rejected: User unknown")
            #expect(outcomes[2].stage == .rcpt)
            await connection.quit()

            let received = try peer.receivedMessages()
            #expect(received.count == 1)
            #expect(received.first?["to"] as? [String] == ["ok@d.test", "ok2@d.test"])
            #expect(received.first?["content"] as? String == pieces.joined())
            #expect((received.first?["options"] as? [String])?.contains("SIZE=\(envelope.contentSize)") == true)
        }
    }

    @Test(.enabled(if: ClientTestTools.enabled(ClientTestTools.hasAIOSMTPD)))
    func greeting421EndsTheAttempt() async throws {
        try await withClientGroup { group in
            let peer = try PeerProcess.aiosmtpd(["--greet421"])
            defer { peer.stop() }
            let error = await #expect(throws: SMTPClientError.self) {
                try await SMTPClientConnection.connect(
                    host: "127.0.0.1", port: peer.port, configuration: testClientConfiguration, group: group, logger: clientLogger
                )
            }
            #expect(error?.code == .greetingRefused, "\(String(describing: error))")
            #expect(error?.reply.code == 421)
            #expect(error?.isRemoteReply == true)
            #expect(error?.isPermanent == false)
        }
    }

    @Test(.enabled(if: ClientTestTools.enabled(ClientTestTools.hasAIOSMTPD)))
    func smtpUTF8AndSize() async throws {
        try await withClientGroup { group in
            let peer = try PeerProcess.aiosmtpd(["--smtputf8", "--size", "1000"])
            defer { peer.stop() }
            let connection = try await SMTPClientConnection.connect(
                host: "127.0.0.1", port: peer.port, configuration: testClientConfiguration, group: group, logger: clientLogger
            )
            #expect(connection.capabilities.maxMessageSize == 1000)
            let utf8 = try await connection.send(message(to: ["j\u{f6}rg@d.test"], body: "Subject: gr\u{fc}\u{df}e\r\n\r\nhi\r\n"))
            #expect(describe(utf8) == ["j\u{f6}rg@d.test sent 250"])
            let big = try await connection.send(message(to: ["a@d.test"], body: String(repeating: "x", count: 1001)))
            #expect(describe(big) == ["a@d.test failed 552 5.3.4"])
            await connection.quit()
            let received = try peer.receivedMessages()
            #expect(received.count == 1)
            #expect((received.first?["options"] as? [String])?.contains("SMTPUTF8") == true)
            #expect((received.first?["options"] as? [String])?.contains("BODY=8BITMIME") == true)
        }
    }

    @Test(.enabled(if: ClientTestTools.enabled(ClientTestTools.hasAIOSMTPD)))
    func connectionDroppedMidDataDefers() async throws {
        try await withClientGroup { group in
            let peer = try PeerProcess.aiosmtpd(["--drop-data"])
            defer { peer.stop() }
            let connection = try await SMTPClientConnection.connect(
                host: "127.0.0.1", port: peer.port, configuration: testClientConfiguration, group: group, logger: clientLogger
            )
            let outcomes = try await connection.send(message(to: ["ok@d.test", "bad@d.test"]))
            #expect(describe(outcomes) == ["ok@d.test deferred 421 4.4.2", "bad@d.test failed 550"])
        }
    }

    @Test(.enabled(if: ClientTestTools.enabled(ClientTestTools.hasAIOSMTPD && ClientTestTools.hasOpenSSL)))
    func opportunisticSTARTTLS() async throws {
        try await withClientGroup { group in
            let certificatePeer = try PeerProcess.aiosmtpd(["--greet421"])
            defer { certificatePeer.stop() }
            let (certificate, key) = try certificatePeer.makeCertificate()
            let peer = try PeerProcess.aiosmtpd(["--tls", certificate, key])
            defer { peer.stop() }
            // Opportunistic: a self-signed certificate for another name is accepted unverified.
            let connection = try await SMTPClientConnection.connect(
                host: "127.0.0.1", port: peer.port, configuration: testClientConfiguration,
                tls: try SMTPClientTLS(verifyCertificate: false), group: group, logger: clientLogger
            )
            #expect(connection.tlsActive)
            #expect(!connection.capabilities.startTLS) // the EHLO after TLS
            let outcomes = try await connection.send(message(to: ["ok@d.test"], body: dottedBody))
            #expect(describe(outcomes) == ["ok@d.test sent 250"])
            #expect(outcomes.first?.tlsUsed == true)
            await connection.quit()
            let received = try peer.receivedMessages()
            #expect(received.first?["tls"] as? Bool == true)
            #expect(received.first?["content"] as? String == dottedBody + "\r\n")

            // Required and verified: the certificate must chain to the given root and name localhost.
            var required = testClientConfiguration
            required.tlsPolicy = .required
            let verified = try await SMTPClientConnection.connect(
                to: try SocketAddress(ipAddress: "127.0.0.1", port: peer.port), remoteHost: "localhost",
                configuration: required, tls: try SMTPClientTLS(verifyCertificate: true, trustRootsPEMFile: certificate),
                group: group, logger: clientLogger
            )
            #expect(verified.tlsActive)
            await verified.quit()

            // Required and verified against the system roots: the self-signed certificate fails.
            let error = await #expect(throws: SMTPClientError.self) {
                try await SMTPClientConnection.connect(
                    to: try SocketAddress(ipAddress: "127.0.0.1", port: peer.port), remoteHost: "localhost",
                    configuration: required, tls: try SMTPClientTLS(verifyCertificate: true),
                    group: group, logger: clientLogger
                )
            }
            #expect(error?.code == .tlsFailed)
            #expect(error?.reply.enhancedStatusCode?.description == "4.7.5")
        }
    }

    @Test(.enabled(if: ClientTestTools.enabled(ClientTestTools.hasAIOSMTPD)))
    func requiredSTARTTLSNotOffered() async throws {
        try await withClientGroup { group in
            let peer = try PeerProcess.aiosmtpd()
            defer { peer.stop() }
            var configuration = testClientConfiguration
            configuration.tlsPolicy = .required
            let error = await #expect(throws: SMTPClientError.self) {
                try await SMTPClientConnection.connect(
                    host: "127.0.0.1", port: peer.port, configuration: configuration,
                    tls: try SMTPClientTLS(verifyCertificate: false), group: group, logger: clientLogger
                )
            }
            #expect(error?.code == .tlsRequired)
            #expect(error?.reply.code == 454)
            #expect(error?.reply.enhancedStatusCode?.description == "4.7.4")
            #expect(error?.isPermanent == false)
        }
    }
}

@Suite(.timeLimit(.minutes(1)))
struct SMTPClientTernServerTests {
    @Test
    func deliversToTernsOwnServer() async throws {
        let backend = MemoryBackend(commitDelay: .milliseconds(1))
        let configuration = SMTPServerConfiguration(hostname: "mx.tern.test", requireIdentity: false, offerAuth: false)
        try await withServer(configuration: configuration, backend: backend) { _, address, group in
            let connection = try await SMTPClientConnection.connect(
                to: address, remoteHost: "mx.tern.test", configuration: testClientConfiguration, group: group, logger: clientLogger
            )
            #expect(connection.capabilities.pipelining)
            #expect(connection.capabilities.enhancedStatusCodes)
            for index in 0..<3 {
                let outcomes = try await connection.send(message(to: ["r\(index)@d.test", "s\(index)@d.test"], body: dottedBody))
                #expect(outcomes.map(\.status) == [.sent, .sent])
                #expect(outcomes.first?.enhancedStatusCode?.description == "2.0.0")
            }
            await connection.quit()
        }
        let messages = backend.messages.withLock { $0 }
        #expect(messages.count == 3)
        #expect(messages.first.map { String(buffer: $0.content) } == dottedBody + "\r\n")
        #expect(messages.first?.recipients.map(\.description) == ["r0@d.test", "s0@d.test"])
    }
}

extension SMTPClientConnection {
    /// The connection is still open on this side.
    var isOpen: Bool { channel.isActive }
}
