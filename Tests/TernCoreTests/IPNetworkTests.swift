import Testing
import TernCore

@Suite struct IPNetworkTests {
    @Test(arguments: [
        ("127.0.0.0/8", "127.0.0.1", true),
        ("127.0.0.0/8", "127.255.3.4", true),
        ("127.0.0.0/8", "128.0.0.1", false),
        ("10.1.2.3", "10.1.2.3", true),
        ("10.1.2.3", "10.1.2.4", false),
        ("192.168.0.0/23", "192.168.1.200", true),
        ("192.168.0.0/23", "192.168.2.1", false),
        ("0.0.0.0/0", "8.8.8.8", true),
        ("::1/128", "::1", true),
        ("::1", "::2", false),
        ("2001:db8::/32", "2001:db8:ffff::1", true),
        ("2001:db8::/32", "2001:db9::1", false),
        ("127.0.0.0/8", "::ffff:127.0.0.1", true),
        ("127.0.0.0/8", "::1", false),
    ])
    func contains(network: String, address: String, expected: Bool) throws {
        let network = try #require(IPNetwork(network))
        let address = try #require(IPAddress(address))
        #expect(network.contains(address) == expected)
    }

    @Test(arguments: ["", "300.1.1.1/8", "10.0.0.0/33", "::1/129", "10.0.0.0/-1", "host.example/8", "10.0.0.0/x"])
    func rejectsMalformed(text: String) {
        #expect(IPNetwork(text) == nil)
    }

    @Test(arguments: [("127.0.0.1", true), ("127.9.9.9", true), ("::1", true), ("::ffff:127.0.0.1", true), ("10.0.0.1", false), ("::2", false)])
    func loopback(text: String, expected: Bool) throws {
        #expect(try #require(IPAddress(text)).isLoopback == expected)
    }

    @Test func description() throws {
        #expect(try #require(IPNetwork("10.0.0.0/8")).description == "10.0.0.0/8")
        #expect(try #require(IPNetwork("::1")).description == "::1/128")
    }
}
