import Crypto
import Testing
@testable import TernCore

@Suite struct PrimedHMACTests {
    /// The primed HMAC is HMAC-SHA256 itself, for keys up to a block and messages of any
    /// length (prefix and rest split anywhere).
    @Test func matchesSwiftCryptosHMAC() {
        var random = SplitMix64(seed: 0x7E57)
        for _ in 0..<300 {
            let key = (0..<Int(random.next() % 65)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let message = (0..<Int(random.next() % 200)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let split = message.isEmpty ? 0 : Int(random.next() % UInt64(message.count + 1))
            var primed = PrimedHMACSHA256(key: SymmetricKey(data: key))
            primed.update(data: message[..<split])
            let code = message[split...].withUnsafeBytes { primed.authenticationCode(over: $0) }
            let expected = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
            #expect(Array(code) == Array(expected), "key \(key.count) bytes, message \(message.count), split at \(split)")
        }
    }

    /// Tokens already in sent mail keep verifying: each kind's MAC is still HMAC-SHA256 of
    /// label, kind and token bytes under that kind's key, truncated.
    @Test(arguments: [TrackingTokenKind.open, .click, .unsubscribe, .bounce])
    func tokenMACsAreUnchanged(kind: TrackingTokenKind) throws {
        let keys = try TrackingKeys(secrets: [Array(0..<UInt8(32))])
        let signer = try #require(keys.signers.first)
        let bytes: [UInt8] = [1, 7, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
        let expected = HMAC<SHA256>.authenticationCode(
            for: TrackingKeys.label + [kind.rawValue] + bytes, using: signer.key(for: kind))
        #expect(signer.mac(kind: kind, over: bytes[...]) == Array(Array(expected).prefix(TrackingKeys.macByteCount)))
    }
}
