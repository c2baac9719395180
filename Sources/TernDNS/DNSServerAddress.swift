/// A name server to query: an IP address and port. Names are not accepted (resolving them needs a resolver).
public struct DNSServerAddress: Hashable, Sendable, CustomStringConvertible {
    public static let defaultPort = 53

    public var address: IPAddress
    public var port: Int

    public init(address: IPAddress, port: Int = defaultPort) {
        self.address = address
        self.port = port
    }

    /// Parses `127.0.0.1`, `127.0.0.1:5353`, `::1`, `[::1]` or `[::1]:5353`.
    public init?(_ text: String) {
        let text = text.trimmingASCIIWhitespace()
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), let address = IPv6Address(text[text.index(after: text.startIndex)..<close]) else {
                return nil
            }
            let rest = text[text.index(after: close)...]
            if rest.isEmpty {
                self.init(address: .v6(address))
            } else {
                guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (1...65535).contains(port) else { return nil }
                self.init(address: .v6(address), port: port)
            }
        } else if let v6 = IPv6Address(text) {
            self.init(address: .v6(v6))
        } else {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), let v4 = IPv4Address(parts[0]) else { return nil }
            if parts.count == 2 {
                guard let port = Int(parts[1]), (1...65535).contains(port) else { return nil }
                self.init(address: .v4(v4), port: port)
            } else {
                self.init(address: .v4(v4))
            }
        }
    }

    public var description: String {
        switch address {
        case .v4(let v4): "\(v4):\(port)"
        case .v6(let v6): "[\(v6)]:\(port)"
        }
    }

    /// The `nameserver` lines of a resolv.conf(5) file, in order; other lines, comments and bad entries are skipped.
    public static func parseResolvConf(_ contents: String) -> [DNSServerAddress] {
        var servers: [DNSServerAddress] = []
        for line in contents.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, fields[0] == "nameserver" else { continue }
            var text = String(fields[1])
            if let percent = text.firstIndex(of: "%") { text = String(text[..<percent]) }  // fe80::1%eth0
            if let server = DNSServerAddress(text) { servers.append(server) }
        }
        return servers
    }
}

extension String {
    func trimmingASCIIWhitespace() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        var slice = Substring(self)
        while let first = slice.first, isSpace(first) { slice = slice.dropFirst() }
        while let last = slice.last, isSpace(last) { slice = slice.dropLast() }
        return slice
    }
}
