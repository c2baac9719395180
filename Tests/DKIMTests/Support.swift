import Foundation

@testable import DKIM

/// Bytes of a string with `\n` line ends turned into CRLF.
func crlf(_ text: String) -> [UInt8] {
    Array(text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n").utf8)
}

func base64(_ bytes: [UInt8]) -> String {
    Data(bytes).base64EncodedString()
}

/// The canonical body written the obvious way, from the RFC's words, with whole lines: as an
/// independent check of the streaming canonicaliser.
///
/// A body not ending in CRLF gets one (as SMTP sends it); lines are what CRLF separates; relaxed
/// collapses each WSP run to one SP and drops WSP at line ends; empty lines at the end go; an
/// empty simple body is one CRLF (RFC 6376 §3.4.3, §3.4.4).
func referenceCanonicalBody(_ body: [UInt8], _ canonicalization: DKIMCanonicalization) -> [UInt8] {
    var body = body
    if !body.isEmpty, !(body.count >= 2 && body[body.count - 2] == 13 && body[body.count - 1] == 10) {
        body += [13, 10]
    }
    var lines: [[UInt8]] = []
    var line: [UInt8] = []
    var i = 0
    while i < body.count {
        if body[i] == 13, i + 1 < body.count, body[i + 1] == 10 {
            lines.append(line)
            line = []
            i += 2
        } else {
            line.append(body[i])
            i += 1
        }
    }
    if canonicalization == .relaxed {
        lines = lines.map { line in
            var out: [UInt8] = []
            var inWSP = false
            for b in line {
                if b == 32 || b == 9 {
                    inWSP = true
                } else {
                    if inWSP { out.append(32) }
                    inWSP = false
                    out.append(b)
                }
            }
            return out  // WSP at the end is dropped by never writing it
        }
    }
    while let last = lines.last, last.isEmpty { lines.removeLast() }
    var out: [UInt8] = []
    for line in lines { out += line + [13, 10] }
    if canonicalization == .simple, out.isEmpty { out = [13, 10] }
    return out
}

/// Collects canonical body bytes.
struct ArraySink: CanonicalBodySink {
    var bytes: [UInt8] = []

    mutating func write(_ buffer: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: buffer)
    }
}

/// The streaming canonicaliser's output for a body fed in the given chunks.
func streamedCanonicalBody(_ chunks: [[UInt8]], _ canonicalization: DKIMCanonicalization) -> [UInt8] {
    var canonicalizer = BodyCanonicalizer(canonicalization)
    var sink = ArraySink()
    for chunk in chunks {
        chunk.withUnsafeBytes { canonicalizer.update($0, into: &sink) }
    }
    canonicalizer.finish(into: &sink)
    return sink.bytes
}

/// RFC 8463 Appendix A: the keys and the signed message.
enum RFC8463 {
    /// A.2: the Ed25519 private key (its 32-byte seed).
    static let ed25519Seed = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
    /// A.2: the Ed25519 public key, as published in `brisbane._domainkey.football.example.com`.
    static let ed25519Public = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    /// A.1: the RSA private key (1024 bits: fine for a test vector, refused for signing).
    static let rsaPrivateKeyPEM = """
        -----BEGIN RSA PRIVATE KEY-----
        MIICXQIBAAKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi
        Y/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqM
        KrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB
        AoGAH0cxOhFZDgzXWhDhnAJDw5s4roOXN4OhjiXa8W7Y3rhX3FJqmJSPuC8N9vQm
        6SVbaLAE4SG5mLMueHlh4KXffEpuLEiNp9Ss3O4YfLiQpbRqE7Tm5SxKjvvQoZZe
        zHorimOaChRL2it47iuWxzxSiRMv4c+j70GiWdxXnxe4UoECQQDzJB/0U58W7RZy
        6enGVj2kWF732CoWFZWzi1FicudrBFoy63QwcowpoCazKtvZGMNlPWnC7x/6o8Gc
        uSe0ga2xAkEA8C7PipPm1/1fTRQvj1o/dDmZp243044ZNyxjg+/OPN0oWCbXIGxy
        WvmZbXriOWoSALJTjExEgraHEgnXssuk7QJBALl5ICsYMu6hMxO73gnfNayNgPxd
        WFV6Z7ULnKyV7HSVYF0hgYOHjeYe9gaMtiJYoo0zGN+L3AAtNP9huqkWlzECQE1a
        licIeVlo1e+qJ6Mgqr0Q7Aa7falZ448ccbSFYEPD6oFxiOl9Y9se9iYHZKKfIcst
        o7DUw1/hz2Ck4N5JrgUCQQCyKveNvjzkkd8HjYs0SwM0fPjK16//5qDZ2UiDGnOe
        uEzxBDAr518Z8VFbR41in3W4Y3yCDgQlLlcETrS+zYcL
        -----END RSA PRIVATE KEY-----
        """
    /// A.3: the Ed25519 signature field as published, folded as published.
    static let ed25519Field = """
        DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;
         d=football.example.com; i=@football.example.com;
         q=dns/txt; s=brisbane; t=1528637909; h=from : to :
         subject : date : message-id : from : subject : date;
         bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
         b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus
         Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==

        """
    /// A.3: the RSA signature field as published.
    static let rsaField = """
        DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;
         d=football.example.com; i=@football.example.com;
         q=dns/txt; s=test; t=1528637909; h=from : to : subject :
         date : message-id : from : subject : date;
         bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
         b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3
         DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz
         dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=

        """
    static let ed25519Signature = "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw=="
    static let rsaSignature =
        "F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2JzdA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8="
    static let bodyHash = "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="
    static let timestamp: TimeInterval = 1_528_637_909
    /// A.1: the unsigned header.
    static let header = """
        From: Joe SixPack <joe@football.example.com>
        To: Suzie Q <suzie@shopping.example.net>
        Subject: Is dinner ready?
        Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)
        Message-ID: <20030712040037.46341.5F8J@football.example.com>

        """
    /// A.1: the body.
    static let body = """
        Hi.

        We lost the game.  Are you hungry yet?

        Joe.

        """
    static var message: [UInt8] { crlf(header + "\n" + body) }
    static var signedMessage: [UInt8] { crlf(ed25519Field + rsaField + header + "\n" + body) }
}
