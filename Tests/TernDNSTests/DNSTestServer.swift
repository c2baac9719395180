import Foundation
import Testing
import TernDNS

/// A real DNS server on loopback (PyPI `dnslib`), started per test as a subprocess on a free UDP+TCP port.
final class DNSTestServer: Sendable {
    let process: Process
    let port: Int
    let directory: URL
    let stdin = Pipe()

    var address: String { "127.0.0.1:\(port)" }

    /// Whether python3 with dnslib is usable; checked once.
    static let available: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import dnslib"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    /// Run when dnslib is present, and also under CI, where its absence must fail the test rather than skip it.
    static var shouldRun: Bool { available || ProcessInfo.processInfo.environment["CI"] != nil }

    static func requireAvailable() throws {
        guard available else {
            throw TestServerError(
                "python3 with the dnslib package is required for the DNS integration tests: `pip install dnslib` (CI is set, so this is a failure, not a skip)"
            )
        }
    }

    struct TestServerError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    init() async throws {
        try Self.requireAvailable()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tern-dns-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let script = directory.appendingPathComponent("zone_server.py")
        let portFile = directory.appendingPathComponent("port")
        try Self.script.write(to: script, atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, portFile.path]
        process.standardInput = stdin  // the server exits when this closes
        try process.run()
        var port: Int? = nil
        for _ in 0..<200 {
            if let text = try? String(contentsOf: portFile, encoding: .utf8), text.hasSuffix("\n"), let value = Int(text.dropLast()) {
                port = value
                break
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        guard let port else {
            kill(process.processIdentifier, SIGKILL)
            throw TestServerError("the dnslib test server did not start (exit status \(process.isRunning ? "running" : "\(process.terminationStatus)"))")
        }
        self.port = port
    }

    /// Closes the server's stdin (it exits on EOF), then kills it if it lingers. SIGTERM alone is not enough:
    /// the child can inherit a signal mask that blocks it. `waitUntilExit` is avoided; it spins a run loop.
    func stop() async {
        try? stdin.fileHandleForWriting.close()
        for _ in 0..<40 where process.isRunning { try? await Task.sleep(for: .milliseconds(25)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for _ in 0..<40 where process.isRunning { try? await Task.sleep(for: .milliseconds(25)) }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `body` with a fresh server, stopping it afterwards.
    static func with<T>(_ body: (DNSTestServer) async throws -> T) async throws -> T {
        let server = try await DNSTestServer()
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    /// The zone, answered as a recursive resolver would (CNAME targets included, SOA on negative answers).
    static let script = #"""
import sys, threading, socket
from dnslib import DNSRecord, RR, QTYPE, RCODE, A, AAAA, MX, TXT, CNAME, SOA
from dnslib.server import DNSServer, BaseResolver, DNSLogger

SOA_RR = RR("test.", QTYPE.SOA, ttl=300, rdata=SOA("ns.test.", "hostmaster.test.", (1, 3600, 600, 86400, 60)))
ZONE = {
    ("example.test.", "MX"): [MX("mx1.example.test.", 10), MX("mx2.example.test.", 10), MX("mx3.example.test.", 20)],
    ("mx1.example.test.", "A"): [A("127.0.0.2")],
    ("mx1.example.test.", "AAAA"): [AAAA("::1")],
    ("mx2.example.test.", "A"): [A("127.0.0.3")],
    ("mx3.example.test.", "A"): [A("127.0.0.4")],
    ("example.test.", "TXT"): [TXT("v=spf1 ip4:127.0.0.0/8 -all"), TXT(["v=DKIM1; k=rsa; ", "p=MIGfMA0GCSqGSIb3"])],
    ("nullmx.test.", "MX"): [MX(".", 0)],
    ("implicit.test.", "A"): [A("127.0.0.9")],
    ("cnamemx.test.", "MX"): [MX("alias.test.", 5)],
    ("ttl.test.", "A"): [A("127.0.0.10")],
}
EXISTS = {name for (name, _) in ZONE} | {"alias.test.", "big.test."}
CNAMES = {"alias.test.": "mx1.example.test."}
COUNTS = {}
LOCK = threading.Lock()

class Resolver(BaseResolver):
    def resolve(self, request, handler):
        qname = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        with LOCK:
            COUNTS[qname] = COUNTS.get(qname, 0) + 1
        reply = request.reply()
        if qname == "drop.test.":
            raise Exception("dropped on purpose")
        if qname == "servfail.test.":
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if qname == "count.test.":
            with LOCK:
                text = ",".join("%s=%d" % kv for kv in sorted(COUNTS.items()))
            reply.add_answer(RR(qname, QTYPE.TXT, ttl=0, rdata=TXT(text)))
            return reply
        if qname == "spoof.test." and handler.protocol == "udp":
            # A forged answer with another id arrives first; the resolver must ignore it.
            forged = request.reply()
            forged.header.id = (request.header.id + 1) % 65536
            forged.add_answer(RR(qname, QTYPE.A, ttl=60, rdata=A("6.6.6.6")))
            handler.request[1].sendto(forged.pack(), handler.client_address)
            reply.add_answer(RR(qname, QTYPE.A, ttl=60, rdata=A("127.0.0.66")))
            return reply
        if qname == "spoof.test.":
            reply.add_answer(RR(qname, QTYPE.A, ttl=60, rdata=A("127.0.0.66")))
            return reply
        if qname == "big.test." and qtype == "TXT":
            if handler.protocol == "udp":
                reply.header.tc = 1
                return reply
            for i in range(40):
                reply.add_answer(RR(qname, QTYPE.TXT, ttl=120, rdata=TXT("record %02d " % i + "x" * 60)))
            return reply
        name = qname
        if name in CNAMES and qtype != "CNAME":
            reply.add_answer(RR(name, QTYPE.CNAME, ttl=90, rdata=CNAME(CNAMES[name])))
            name = CNAMES[name]
        records = ZONE.get((name, qtype))
        if records:
            for rdata in records:
                reply.add_answer(RR(name, getattr(QTYPE, qtype), ttl=120, rdata=rdata))
        else:
            if name not in EXISTS:
                reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(SOA_RR)
        return reply

def main():
    resolver = Resolver()
    logger = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    for _ in range(50):
        udp = DNSServer(resolver, address="127.0.0.1", port=0, logger=logger)
        port = udp.server.server_address[1]
        try:
            tcp = DNSServer(resolver, address="127.0.0.1", port=port, tcp=True, logger=logger)
        except OSError:
            udp.server.server_close()
            continue
        break
    else:
        sys.exit("no free port")
    udp.start_thread()
    tcp.start_thread()
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write("%d\n" % port)
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    sys.stdin.read()  # until the test closes our stdin or terminates us

main()
"""#
}
