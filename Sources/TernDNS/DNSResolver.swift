public import Logging
public import NIOCore
internal import NIOPosix
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Musl)
internal import Musl
#elseif canImport(Darwin)
internal import Darwin
#endif

/// A stub resolver over SwiftNIO: UDP queries to recursive name servers, TCP when an answer is truncated
/// (RFC 7766 §5), per-query timeouts, retries across servers, and a TTL cache. Nothing blocks an event loop.
public final class DNSResolver: DNSResolving {
    /// Plain settings; every limit is named and has a default.
    public struct Configuration: Sendable {
        /// Servers in the order to try them; empty means "read /etc/resolv.conf" (and 127.0.0.1:53 if it lists none).
        public var servers: [DNSServerAddress]
        /// How long to wait for one server's answer to one query.
        public var timeout: Duration
        /// Rounds over the whole server list before giving up (resolv.conf's `attempts`).
        public var attempts: Int
        /// EDNS(0) UDP payload size to advertise (RFC 6891 §6.2.5); nil sends no OPT record.
        public var ednsPayloadSize: UInt16?
        public var cacheCapacity: Int
        public var maxCacheTTL: Duration
        /// Cap for NXDOMAIN/NODATA caching (RFC 2308 §5).
        public var maxNegativeCacheTTL: Duration

        public static let defaultTimeout: Duration = .seconds(3)
        public static let defaultAttempts = 2
        public static let resolvConfPath = "/etc/resolv.conf"

        public init(
            servers: [DNSServerAddress] = [],
            timeout: Duration = defaultTimeout,
            attempts: Int = defaultAttempts,
            ednsPayloadSize: UInt16? = DNSDefaults.ednsUDPPayloadSize,
            cacheCapacity: Int = DNSCache.defaultCapacity,
            maxCacheTTL: Duration = DNSCache.defaultMaxTTL,
            maxNegativeCacheTTL: Duration = DNSCache.defaultMaxNegativeTTL
        ) {
            self.servers = servers
            self.timeout = timeout
            self.attempts = attempts
            self.ednsPayloadSize = ednsPayloadSize
            self.cacheCapacity = cacheCapacity
            self.maxCacheTTL = maxCacheTTL
            self.maxNegativeCacheTTL = maxNegativeCacheTTL
        }

        /// Configuration from `host:port` strings such as `127.0.0.1:5353` or `[::1]:53`.
        /// - Returns: nil if any entry is not an IP address with an optional port.
        public init?(servers: [String]) {
            var parsed: [DNSServerAddress] = []
            for text in servers {
                guard let server = DNSServerAddress(text) else { return nil }
                parsed.append(server)
            }
            self.init(servers: parsed)
        }
    }

    public let servers: [DNSServerAddress]
    public let configuration: Configuration
    let group: any EventLoopGroup
    let logger: Logger
    let now: @Sendable () -> ContinuousClock.Instant
    let cache: Mutex<DNSCache>

    /// - Parameters:
    ///   - eventLoopGroup: where sockets live; nil uses NIO's shared singleton group.
    ///   - now: the clock for cache expiry; injected so tests can move time.
    public init(
        configuration: Configuration = Configuration(),
        eventLoopGroup: (any EventLoopGroup)? = nil,
        logger: Logger = Logger(label: "tern.dns"),
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        var servers = configuration.servers
        if servers.isEmpty {
            servers = Self.readFile(Configuration.resolvConfPath).map(DNSServerAddress.parseResolvConf) ?? []
        }
        if servers.isEmpty { servers = [DNSServerAddress(address: .v4(IPv4Address(127, 0, 0, 1)))] }
        self.servers = servers
        self.configuration = configuration
        self.group = eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        self.logger = logger
        self.now = now
        self.cache = Mutex(
            DNSCache(capacity: configuration.cacheCapacity, maxTTL: configuration.maxCacheTTL, maxNegativeTTL: configuration.maxNegativeCacheTTL)
        )
    }

    /// Empties the cache.
    public func flushCache() {
        cache.withLock { $0.removeAll() }
    }

    public func lookup(_ name: DNSName, _ type: DNSRecordType) async throws(DNSError) -> DNSAnswer {
        let question = DNSQuestion(name: name, type: type)
        let key = DNSCache.Key(name: name, type: type)
        let cached = cache.withLock { $0.lookup(key, now: now()) }
        switch cached {
        case .answer(let answer)?:
            return answer
        case .nameDoesNotExist?:
            throw DNSError(.nameDoesNotExist, name: name.description, type: type, detail: "cached")
        case nil:
            break
        }

        var current = name
        var chain: [DNSResourceRecord] = []
        for _ in 0...DNSResponseInterpretation.maxCNAMEChain {
            let response = try await exchange(DNSQuestion(name: current, type: type))
            switch DNSResponseInterpretation.interpret(response, question: DNSQuestion(name: current, type: type)) {
            case .answer(var answer, let ttl):
                answer.question = question
                store(.answer(answer), key: key, ttl: ttl.map { ttl in (chain.map(\.ttl) + [ttl]).min() ?? ttl })
                return answer
            case .nameDoesNotExist(let ttl):
                store(.nameDoesNotExist, key: key, ttl: ttl.map { ttl in (chain.map(\.ttl) + [ttl]).min() ?? ttl })
                throw DNSError(.nameDoesNotExist, name: name.description, type: type, detail: current == name ? "" : "via CNAME \(current)")
            case .followCNAME(let target, let links):
                chain += links
                current = target
            case .failure(let code, let rcode):
                throw DNSError(code, name: name.description, type: type, detail: "\(rcode) from server")
            }
        }
        throw DNSError(.malformedResponse, name: name.description, type: type, detail: "CNAME chain too long")
    }

    func store(_ outcome: DNSCache.Outcome, key: DNSCache.Key, ttl: UInt32?) {
        guard let ttl else { return }
        let instant = now()
        cache.withLock { $0.insert(outcome, for: key, ttl: ttl, now: instant) }
    }

    // MARK: - Transport

    /// Asks each server in turn, `attempts` rounds, until one gives a usable answer (RFC 1035 §7.2).
    /// SERVFAIL, REFUSED, timeouts and network errors move on to the next server; NOERROR and NXDOMAIN end it.
    func exchange(_ question: DNSQuestion) async throws(DNSError) -> DNSMessage {
        var lastError = DNSError(.noNameServers, name: question.name.description, type: question.type)
        for _ in 0..<max(1, configuration.attempts) {
            for server in servers {
                if Task.isCancelled {
                    throw DNSError(.networkError, name: question.name.description, type: question.type, detail: "cancelled")
                }
                do {
                    let response = try await query(question, server: server, edns: configuration.ednsPayloadSize)
                    switch response.header.responseCode {
                    case .noError, .nameError:
                        return response
                    case .serverFailure:
                        lastError = DNSError(.serverFailure, name: question.name.description, type: question.type, detail: "SERVFAIL from \(server)")
                    case .refused:
                        lastError = DNSError(.refused, name: question.name.description, type: question.type, detail: "REFUSED by \(server)")
                    default:
                        lastError = DNSError(
                            .unexpectedResponse, name: question.name.description, type: question.type,
                            detail: "\(response.header.responseCode) from \(server)"
                        )
                    }
                } catch {
                    lastError = DNSError(error.code, name: question.name.description, type: question.type, detail: "\(error.detail) (\(server))")
                }
                logger.debug("dns query failed", metadata: ["server": "\(server)", "question": "\(question.name) \(question.type)", "error": "\(lastError)"])
            }
        }
        throw lastError
    }

    struct TransportError: Error {
        var code: DNSError.Code
        var detail: String
    }

    /// One query to one server: UDP, then TCP on TC=1. A server answering FORMERR/NOTIMP to EDNS is asked
    /// again without it (RFC 6891 §7).
    func query(_ question: DNSQuestion, server: DNSServerAddress, edns: UInt16?) async throws(TransportError) -> DNSMessage {
        let address: SocketAddress
        do {
            address = try SocketAddress(ipAddress: server.address.description, port: server.port)
        } catch {
            throw TransportError(code: .networkError, detail: "bad server address \(server)")
        }
        let query = DNSMessage.query(id: UInt16.random(in: .min ... .max), name: question.name, type: question.type, ednsPayloadSize: edns)
        var response = try await udp(query, to: address)
        if response.header.isTruncated {
            logger.debug("dns answer truncated, retrying over TCP", metadata: ["server": "\(server)", "question": "\(question.name) \(question.type)"])
            response = try await tcp(query, to: address)
        }
        if edns != nil, response.header.responseCode == .formatError || response.header.responseCode == .notImplemented {
            return try await self.query(question, server: server, edns: nil)
        }
        return response
    }

    func udp(_ query: DNSMessage, to server: SocketAddress) async throws(TransportError) -> DNSMessage {
        let timeout = configuration.timeout
        do {
            let channel = try await DatagramBootstrap(group: group)
                .bind(host: server.protocol == .inet6 ? "::" : "0.0.0.0", port: 0) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: channel)
                    }
                }
            return try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(AddressedEnvelope(remoteAddress: server, data: query.bytes))
                return try await Self.withTimeout(timeout) {
                    for try await envelope in inbound {
                        // Only the server we asked, only our id and question; anything else is dropped (RFC 5452 §9.1).
                        guard envelope.remoteAddress == server,
                              let response = try? DNSMessage(decoding: envelope.data),
                              DNSResponseInterpretation.matches(response, query: query)
                        else { continue }
                        return response
                    }
                    throw TransportError(code: .networkError, detail: "UDP socket closed")
                }
            }
        } catch let error as TransportError {
            throw error
        } catch {
            throw TransportError(code: .networkError, detail: "UDP: \(error)")
        }
    }

    func tcp(_ query: DNSMessage, to server: SocketAddress) async throws(TransportError) -> DNSMessage {
        let timeout = configuration.timeout
        do {
            return try await Self.withTimeout(timeout) { [group] in
                let channel = try await ClientBootstrap(group: group)
                    .connectTimeout(.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000))
                    .connect(to: server) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DNSTCPFrameDecoder()))
                            return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                        }
                    }
                return try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(DNSTCPFraming.frame(query))
                    for try await frame in inbound {
                        guard let response = try? DNSMessage(decoding: frame) else {
                            throw TransportError(code: .malformedResponse, detail: "undecodable TCP answer")
                        }
                        guard DNSResponseInterpretation.matches(response, query: query) else {
                            throw TransportError(code: .malformedResponse, detail: "TCP answer does not match the query")
                        }
                        return response
                    }
                    throw TransportError(code: .networkError, detail: "TCP connection closed before an answer")
                }
            }
        } catch let error as TransportError {
            throw error
        } catch {
            throw TransportError(code: .networkError, detail: "TCP: \(error)")
        }
    }

    /// Runs `body`, failing with a `.timeout` transport error after `timeout`; the loser is cancelled.
    static func withTimeout<T: Sendable>(
        _ timeout: Duration, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw TransportError(code: .timeout, detail: "no answer within \(timeout)")
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else {
                throw TransportError(code: .timeout, detail: "no answer within \(timeout)")
            }
            return first
        }
    }

    /// Small configuration file read with plain POSIX calls, once, at start-up.
    static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes += chunk.prefix(count)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
