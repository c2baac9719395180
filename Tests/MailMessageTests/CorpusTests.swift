import Foundation
import Testing

@testable import MailMessage

/// Rewrites every corpus message and checks that only what should change did.
struct CorpusTests {
    @Test func everyCorpusFileHasAnExpectation() throws {
        let files = try Corpus.files()
        #expect(files.count >= 10)
        #expect(Set(files) == Set(Corpus.expectations.map(\.file)))
        for file in files {
            let bytes = try Corpus.bytes(file)
            #expect(Self.lineProblems(bytes).isEmpty, "\(file) is not all CRLF lines of at most 998 octets")
        }
    }

    @Test(arguments: Corpus.expectations)
    func rewrite(expectation: Corpus.Expectation) throws {
        let original = try Corpus.bytes(expectation.file)
        let result = try TrackingRewriter.rewrite(original, options: Corpus.options)
        let before = MailMessage(original)
        let after = MailMessage(result.bytes)

        #expect(result.originalLinks == expectation.links)
        #expect(result.openPixelCount == expectation.pixels)
        #expect(result.unsubscribePlaceholderCount == expectation.placeholders)
        #expect(Self.lineProblems(result.bytes).isEmpty, "\(Self.lineProblems(result.bytes).prefix(3))")

        // Same tree.
        let partsBefore = before.allParts
        let partsAfter = after.allParts
        try #require(partsBefore.count == partsAfter.count)
        #expect(partsBefore.map(\.contentType) == partsAfter.map(\.contentType))

        // The message header: edits only.
        let fieldsBefore = Self.fields(before, before.root).filter { f in !Corpus.removedFields.contains { f.hasPrefix($0.lowercased() + ":") } }
        var fieldsAfter = Self.fields(after, after.root)
        for added in Corpus.addedFields where !before.header.contains(added.name) {
            let field = "\(added.name.lowercased()):\(added.value)"
            #expect(fieldsAfter.filter { $0 == field }.count == 1, "\(added.name) added once")
            fieldsAfter.removeAll { $0 == field }
        }
        for removed in Corpus.removedFields { #expect(!after.header.contains(removed)) }
        #expect(Self.withoutEncodingFields(fieldsAfter) == Self.withoutEncodingFields(fieldsBefore))

        var htmlParts = 0
        var htmlText = ""
        var switched = false
        for (index, (old, new)) in zip(partsBefore, partsAfter).enumerated() {
            if let layout = old.multipart {
                // Boundaries, preamble and epilogue: the bytes between the children.
                #expect(Self.gaps(before, old) == Self.gaps(after, new), "part \(index): delimiters, preamble or epilogue changed")
                #expect(layout.boundary == new.multipart?.boundary)
                if index > 0 { #expect(before.bytes[old.headerRange] == after.bytes[new.headerRange]) }
                continue
            }
            let oldBody = before.decodedBody(of: old).map { String(decoding: $0, as: UTF8.self) } ?? "opaque"
            let changed = before.bytes[old.range] != after.bytes[new.range]
            let inlineHTML = old.contentType.mimeType == "text/html" && !old.isAttachment
                && !Self.isUnderSignedOrMessage(partsBefore, index)
            let plainWithPlaceholder = old.contentType.mimeType == "text/plain" && oldBody.contains(Corpus.placeholder)
                && !Self.isUnderSignedOrMessage(partsBefore, index)
            if !inlineHTML && !plainWithPlaceholder {
                // Everything else stays byte for byte (for the root, its body: the header is checked above).
                if index == 0 {
                    #expect(before.bytes[old.bodyRange] == after.bytes[new.bodyRange], "root body changed")
                } else {
                    #expect(!changed, "part \(index) (\(old.contentType.mimeType)) changed")
                }
                continue
            }
            #expect(changed, "part \(index) should change")
            if index > 0 {
                #expect(Self.withoutEncodingFields(Self.fields(before, old)) == Self.withoutEncodingFields(Self.fields(after, new)))
            }
            if new.transferEncoding != old.transferEncoding {
                #expect(new.transferEncoding == .quotedPrintable)
                #expect([.sevenBit, .eightBit, .binary].contains(old.transferEncoding))
                switched = true
            }
            let newBody = String(decoding: try #require(after.decodedBody(of: new)), as: UTF8.self)
            if plainWithPlaceholder {
                #expect(newBody == oldBody.replacingOccurrences(of: Corpus.placeholder, with: Corpus.unsubscribeURL)
                    .replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n"))
                continue
            }
            htmlParts += 1
            htmlText += newBody
            #expect(newBody.components(separatedBy: Corpus.pixelURL).count - 1 == 1, "part \(index): one pixel")
            #expect(!newBody.contains(Corpus.placeholder))
        }
        #expect(htmlParts == expectation.pixels)
        #expect(switched == expectation.switchesToQuotedPrintable)

        // Each link rewritten exactly once; the kept ones kept.
        for index in expectation.links.indices {
            let tracked = String(decoding: HTMLText.escape(Corpus.trackedURL(index)), as: UTF8.self)
            #expect(htmlText.components(separatedBy: "\"\(tracked)\"").count - 1 == 1, "link \(index) rewritten once")
        }
        #expect(!htmlText.contains(Corpus.trackedURL(expectation.links.count)))
        for kept in expectation.kept {
            #expect(htmlText.contains(kept), "kept: \(kept)")
        }
    }

    /// With nothing enabled, rewriting gives back the same bytes.
    @Test(arguments: Corpus.expectations)
    func identityWithoutOptions(expectation: Corpus.Expectation) throws {
        let original = try Corpus.bytes(expectation.file)
        #expect(try TrackingRewriter.rewrite(original, options: TrackingOptions()).bytes == original)
    }

    // MARK: Helpers

    /// `name:value` of each field, name lowercased.
    static func fields(_ message: MailMessage, _ part: MIMEPart) -> [String] {
        part.header.fields.map { "\($0.name.lowercased()):\($0.value)" }
    }

    static func withoutEncodingFields(_ fields: [String]) -> [String] {
        fields.filter { !$0.hasPrefix("content-transfer-encoding:") && !$0.hasPrefix("mime-version:") }
    }

    /// The bytes of a multipart body outside its children.
    static func gaps(_ message: MailMessage, _ part: MIMEPart) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var cursor = part.bodyRange.lowerBound
        for child in part.children {
            out.append(Array(message.bytes[cursor..<child.range.lowerBound]))
            cursor = child.range.upperBound
        }
        out.append(Array(message.bytes[cursor..<part.bodyRange.upperBound]))
        return out
    }

    /// Whether the part at `index` (depth-first) is inside multipart/signed or multipart/encrypted.
    static func isUnderSignedOrMessage(_ parts: [MIMEPart], _ index: Int) -> Bool {
        let target = parts[index]
        return parts.contains { p in
            p.range.lowerBound <= target.range.lowerBound && target.range.upperBound <= p.range.upperBound && p.depth < target.depth
                && p.contentType.isMultipart && (p.contentType.subtype == "signed" || p.contentType.subtype == "encrypted")
        }
    }

    /// Lines that are too long or not ended by CRLF.
    static func lineProblems(_ bytes: [UInt8]) -> [String] {
        var problems: [String] = []
        var start = 0
        for (i, b) in bytes.enumerated() {
            if b == ASCII.lf {
                if i == 0 || bytes[i - 1] != ASCII.cr { problems.append("bare LF at \(i)") }
                if i - start - 1 > 998 { problems.append("line of \(i - start - 1) octets at \(start)") }
                start = i + 1
            } else if b == ASCII.cr, i + 1 < bytes.count, bytes[i + 1] != ASCII.lf {
                problems.append("bare CR at \(i)")
            }
        }
        if start != bytes.count { problems.append("last line not ended by CRLF") }
        return problems
    }
}
