import Foundation
import Crypto
import _CryptoExtras

/// Slow, salted hashes for SMTP passwords and API keys (scrypt, RFC 7914).
///
/// Stored form: `scrypt$N$r$p$SALT$HASH` with base64 salt and hash, so parameters can
/// be raised later without breaking existing hashes.
public struct SecretHasher: Sendable {
    /// scrypt cost parameters. The defaults take tens of milliseconds and 16 MiB per hash.
    public var rounds: Int
    public var blockSize: Int
    public var parallelism: Int

    public static let defaultRounds = 1 << 14
    public static let defaultBlockSize = 8
    public static let defaultParallelism = 1

    public init(
        rounds: Int = SecretHasher.defaultRounds,
        blockSize: Int = SecretHasher.defaultBlockSize,
        parallelism: Int = SecretHasher.defaultParallelism
    ) {
        self.rounds = rounds
        self.blockSize = blockSize
        self.parallelism = parallelism
    }

    public func hash(_ secret: String) throws -> String {
        var salt = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for index in salt.indices { salt[index] = generator.next() }
        let derived = try Self.derive(secret, salt: salt, rounds: rounds, blockSize: blockSize, parallelism: parallelism)
        return "scrypt$\(rounds)$\(blockSize)$\(parallelism)$\(Data(salt).base64EncodedString())$\(Data(derived).base64EncodedString())"
    }

    /// Checks a secret against a stored hash in constant time; malformed hashes never match.
    public func verify(_ secret: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "scrypt",
            let rounds = Int(parts[1]), let blockSize = Int(parts[2]), let parallelism = Int(parts[3]),
            rounds > 1, rounds <= 1 << 20, blockSize > 0, blockSize <= 32, parallelism > 0, parallelism <= 16,
            let salt = Data(base64Encoded: String(parts[4])),
            let expected = Data(base64Encoded: String(parts[5])), !expected.isEmpty,
            let derived = try? Self.derive(
                secret, salt: [UInt8](salt), rounds: rounds, blockSize: blockSize, parallelism: parallelism,
                outputByteCount: expected.count)
        else { return false }
        return constantTimeEquals(derived, [UInt8](expected))
    }

    /// A well-formed hash of this cost that no secret matches (random salt and digest): what
    /// an unknown user's or key's secret is checked against, so that it costs what a known one does.
    public func unmatchableHash() -> String {
        let salt = Data(SecretGenerator.randomBytes(16)).base64EncodedString()
        let digest = Data(SecretGenerator.randomBytes(32)).base64EncodedString()
        return "scrypt$\(rounds)$\(blockSize)$\(parallelism)$\(salt)$\(digest)"
    }

    private static func derive(
        _ secret: String, salt: [UInt8], rounds: Int, blockSize: Int, parallelism: Int, outputByteCount: Int = 32
    ) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(
            from: Array(secret.utf8), salt: salt, outputByteCount: outputByteCount,
            rounds: rounds, blockSize: blockSize, parallelism: parallelism)
        return key.withUnsafeBytes { Array($0) }
    }
}

/// Checks a secret against a stored hash: `SecretHasher` in production; tests count the checks.
public protocol SecretVerifier: Sendable {
    func verify(_ secret: String, against stored: String) -> Bool
}

extension SecretHasher: SecretVerifier {}

/// Compares two byte strings without an early exit.
public func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
    return difference == 0
}

/// Random secrets for passwords and API keys: URL-safe, no ambiguous punctuation.
public enum SecretGenerator {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    public static func token(length: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8]()
        bytes.reserveCapacity(length)
        for _ in 0..<length {
            bytes.append(alphabet[Int.random(in: 0..<alphabet.count, using: &generator)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in generator.next() }
    }
}
