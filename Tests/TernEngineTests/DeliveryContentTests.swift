import Foundation
import Logging
import NIOCore
import SMTPCore
import SMTPNIO
import Synchronization
import Testing
import TernCore
import TernStoreSQLite
@testable import TernEngine

@Suite struct DeliveryContentTests {
    /// Reads `content` through its pieces, counting the reads.
    private func collect(_ content: DeliveryContent, pieceSize: Int) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await piece in content.pieces(ofSize: pieceSize) {
            #expect(piece.readableBytes <= pieceSize)
            bytes += piece.readableBytesView
        }
        return bytes
    }

    @Test(arguments: [0, 1, 99, 100, 101, 1000])
    func piecesRebuildTheContentEveryTime(size: Int) async throws {
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0) }
        let reads = Mutex(0)
        let content = DeliveryContent(size: size) { offset, maxLength in
            reads.withLock { $0 += 1 }
            guard offset < bytes.count else { return [] }
            return Array(bytes[offset..<min(bytes.count, offset + maxLength)])
        }
        #expect(try await collect(content, pieceSize: 100) == bytes)
        // Sent again (a retry on a new connection): from the start.
        #expect(try await collect(content, pieceSize: 100) == bytes)
        // One read per piece, plus one only when the size is a multiple of the piece size.
        #expect(reads.withLock { $0 } == 2 * (size / 100 + 1))
    }

    /// `whole` (what the transport sends from one buffer) holds every octet, in one read; a
    /// content found longer than its announced size is still read to its end.
    @Test(arguments: [(0, 0, 1), (1, 1, 1), (100, 100, 1), (5000, 5000, 1), (70_000, 70_000, 1), (10, 25, 3)])
    func wholeContentInOneBuffer(announced: Int, actual: Int, expectedReads: Int) async throws {
        let bytes = (0..<actual).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let reads = Mutex(0)
        let content = DeliveryContent(size: announced) { offset, maxLength in
            reads.withLock { $0 += 1 }
            guard offset < bytes.count else { return [] }
            return Array(bytes[offset..<min(bytes.count, offset + maxLength)])
        }
        let whole = try await content.whole()
        #expect(Array(whole.readableBytesView) == bytes)
        #expect(reads.withLock { $0 } == expectedReads)
    }

    @Test func storedContentIsReadFromTheStoreInPieces() async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: path)
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 % 251) }
        let message = QueuedMessage(
            id: .random(), messageIDHeader: "<c@t>", mailFrom: "from@example.com",
            recipients: [QueuedRecipient(id: .random(), address: "to@example.net")], content: bytes,
            credential: nil, clientIP: nil, receivedAt: Date(), eightBitMIME: false, smtpUTF8: false)
        try await store.commitAndWait([message])
        let content = DeliveryContent.stored(message.id, size: bytes.count, in: store)
        #expect(try await collect(content, pieceSize: DeliveryContent.defaultPieceSize) == bytes)
        let missing = DeliveryContent.stored(.random(), size: 10, in: store)
        await #expect(throws: StoreError.self) { _ = try await collect(missing, pieceSize: 100) }
        try await store.close()
    }
}

@Suite struct IntakeEightBitTests {
    @Test(arguments: [
        ("Subject: plain\r\n\r\nascii only\r\n", false, false),
        ("Subject: plain\r\n\r\nascii only\r\n", true, true),
        ("Subject: caf\u{e9}\r\n\r\nna\u{ef}ve\r\n", false, true),
    ])
    func eightBitContentIsMarkedEvenWhenNotDeclared(text: String, declared: Bool, expected: Bool) async throws {
        let (folder, path) = try temporaryStorePath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: path)
        let intake = Intake(
            credentials: CredentialDirectory(store: store), committer: GroupCommitter(store: store, logger: Logger(label: "test")),
            hostname: "mx.test", logger: Logger(label: "test"))
        let received = SMTPReceivedMessage(
            clientAddress: nil, heloName: "client.test", protocolName: "ESMTP", tls: false, identity: nil,
            reversePath: .mailbox(SMTPMailbox(localPart: "from", domain: "example.com")),
            recipients: [SMTPMailbox(localPart: "to", domain: "example.net")], eightBitMIME: declared, smtpUTF8: false,
            content: ByteBuffer(string: text))
        #expect(intake.prepared(received, tenant: .default, now: Date()).message.eightBitMIME == expected)
        try await store.close()
    }
}
