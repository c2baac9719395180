import DKIM
import Foundation
import Logging
import Testing
import TernCore
@testable import TernEngine

/// Signing at intake puts the fields in front of the content where it lies: a large
/// message is not copied to be signed.
@Suite struct IntakeSigningTests {
    @Test func signaturesGoInFrontInPlace() throws {
        let signers = [
            try DKIMSigner(domain: "shop.example", selector: "rsa", key: try DKIMPrivateKey.generateRSA()),
            try DKIMSigner(domain: "shop.example", selector: "ed", key: DKIMPrivateKey.generateEd25519()),
        ]
        let body = String(repeating: "A line of a large message body.\r\n", count: 64 * 1024)  // 2 MiB
        // Built as intake builds it; nothing else keeps the content.
        var message = {
            let stamped = TraceHeaders(hostname: "mx.tern.test").stamp(
                Array("From: <news@shop.example>\r\nSubject: big\r\n\r\n\(body)".utf8),
                received: .init(heloName: "c", clientIP: nil, protocolName: "ESMTPA", queueID: "q", singleRecipient: nil, date: Date()))
            return QueuedMessage(
                id: .next(), messageIDHeader: stamped.messageID, mailFrom: "news@shop.example",
                recipients: [QueuedRecipient(id: .next(), address: "a@example.net")], content: stamped.content, credential: nil,
                clientIP: nil, receivedAt: Date(), eightBitMIME: false, smtpUTF8: false)
        }()
        // Copies of parts only: a reference to the whole would make the content shared.
        let originalCount = message.content.count
        let originalEnds = (Array(message.content.prefix(64)), Array(message.content.suffix(64)))
        let before = message.content.withUnsafeBufferPointer { $0.baseAddress }
        #expect(message.content.capacity >= message.content.count + TraceHeaders.signatureRoom)

        Intake.sign(&message, by: signers, logger: Logger(label: "test"))

        let after = message.content.withUnsafeBufferPointer { $0.baseAddress }
        #expect(before == after, "the content was copied to be signed")
        let text = String(decoding: message.content.prefix(4096), as: UTF8.self)
        // The last signer's field on top: Ed25519, then RSA, then the message as it was.
        #expect(text.hasPrefix("DKIM-Signature: v=1; a=ed25519-sha256;"))
        #expect(text.contains("\r\nDKIM-Signature: v=1; a=rsa-sha256;"))
        let added = message.content.count - originalCount
        #expect(added > 0 && added <= TraceHeaders.signatureRoom)
        #expect(Array(message.content[added..<(added + 64)]) == originalEnds.0 && Array(message.content.suffix(64)) == originalEnds.1)
    }
}
