#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where canonical body bytes go: a hash, or an array in tests.
protocol CanonicalBodySink {
    mutating func write(_ bytes: UnsafeRawBufferPointer)
}

/// Body canonicalisation as a stream: bytes go in as chunks split anywhere (inside a CRLF, inside
/// a run of whitespace, inside the empty lines at the end) and come out canonical.
///
/// Its state is a few flags and one count: the empty lines and the whitespace seen but not yet
/// written, because they are dropped if the body or the line ends there; a CR at the end of a
/// chunk, because only the next byte says whether it ends a line. Bytes that pass unchanged are
/// written in runs straight from the input chunk.
///
/// The body is taken to end in CRLF as SMTP sends it: a body whose last line has no CRLF is
/// canonicalised as though it had one (RFC 6376 §3.4.3, §3.4.4 add it). In relaxed mode WSP at
/// the end of that last line is dropped like any line's.
///
/// - SeeAlso: RFC 6376 §3.4.3 (simple), §3.4.4 (relaxed)
struct BodyCanonicalizer: Sendable {
    let relaxed: Bool
    /// Empty lines after the last line with content, owed only if content follows.
    private var pendingBlankLines = 0
    /// Relaxed: WSP seen in the current line since its last content byte (one SP is owed if content follows).
    private var pendingWhitespace = false
    /// The previous chunk ended in CR.
    private var pendingCR = false
    /// The current line has content (for relaxed: a byte that is not WSP).
    private var lineHasContent = false
    /// Canonical bytes written so far.
    private(set) var canonicalLength = 0

    init(_ canonicalization: DKIMCanonicalization) {
        relaxed = canonicalization == .relaxed
    }

    private static let crlf: [UInt8] = [ASCII.cr, ASCII.lf]
    private static let space: [UInt8] = [ASCII.sp]
    private static let cr: [UInt8] = [ASCII.cr]

    private mutating func write<Sink: CanonicalBodySink>(_ bytes: UnsafeRawBufferPointer, into sink: inout Sink) {
        guard !bytes.isEmpty else { return }
        canonicalLength += bytes.count
        sink.write(bytes)
    }

    private mutating func write<Sink: CanonicalBodySink>(_ bytes: [UInt8], into sink: inout Sink) {
        canonicalLength += bytes.count
        bytes.withUnsafeBytes { sink.write($0) }
    }

    /// Writes what is owed before content: the empty lines, then one SP for a run of WSP.
    private mutating func flushPending<Sink: CanonicalBodySink>(into sink: inout Sink) {
        while pendingBlankLines > 0 {
            write(Self.crlf, into: &sink)
            pendingBlankLines -= 1
        }
        if pendingWhitespace {
            write(Self.space, into: &sink)
            pendingWhitespace = false
        }
    }

    /// A CRLF split across chunks: the line ends.
    private mutating func endLineOutsideChunk<Sink: CanonicalBodySink>(into sink: inout Sink) {
        pendingWhitespace = false
        if lineHasContent {
            write(Self.crlf, into: &sink)
            lineHasContent = false
        } else {
            pendingBlankLines += 1
        }
    }

    mutating func update<Sink: CanonicalBodySink>(_ chunk: UnsafeRawBufferPointer, into sink: inout Sink) {
        let n = chunk.count
        guard n > 0 else { return }
        var i = 0
        if pendingCR {
            pendingCR = false
            if chunk[0] == ASCII.lf {
                endLineOutsideChunk(into: &sink)
                i = 1
            } else {
                // A CR that does not end a line is content.
                flushPending(into: &sink)
                write(Self.cr, into: &sink)
                lineHasContent = true
            }
        }
        // Invariant: [runStart, i) is written unchanged later; nothing is pending before it
        // (pending state is flushed, or the run cut, whenever either changes).
        var runStart = i
        while i < n {
            let b = chunk[i]
            if b == ASCII.cr {
                guard i + 1 < n else {
                    write(UnsafeRawBufferPointer(rebasing: chunk[runStart..<i]), into: &sink)
                    pendingCR = true
                    return
                }
                if chunk[i + 1] == ASCII.lf {
                    if lineHasContent {
                        // Dropped WSP was never in the run: if some is pending the run starts here.
                        if pendingWhitespace {
                            pendingWhitespace = false
                            runStart = i
                        }
                        lineHasContent = false
                        i += 2
                    } else {
                        write(UnsafeRawBufferPointer(rebasing: chunk[runStart..<i]), into: &sink)
                        pendingWhitespace = false
                        pendingBlankLines += 1
                        i += 2
                        runStart = i
                    }
                    continue
                }
                // A bare CR is content: fall through.
            } else if relaxed, ASCII.isWSP(b) {
                var j = i + 1
                while j < n, ASCII.isWSP(chunk[j]) { j += 1 }
                if b == ASCII.sp, j == i + 1, j < n, !pendingWhitespace, pendingBlankLines == 0,
                    chunk[j] != ASCII.cr, !ASCII.isWSP(chunk[j])
                {
                    // One SP between content bytes is already canonical: keep it in the run.
                    i = j
                    continue
                }
                write(UnsafeRawBufferPointer(rebasing: chunk[runStart..<i]), into: &sink)
                pendingWhitespace = true
                i = j
                runStart = j
                continue
            }
            // Content.
            if pendingBlankLines > 0 || pendingWhitespace {
                flushPending(into: &sink)
            }
            lineHasContent = true
            i += 1
            i = relaxed ? Self.relaxedContentEnd(chunk, from: i) : Self.simpleContentEnd(chunk, from: i)
        }
        write(UnsafeRawBufferPointer(rebasing: chunk[runStart..<n]), into: &sink)
    }

    /// After a content byte: the end of the bytes that relaxed canonicalisation keeps as they are,
    /// that is bytes above SP, control bytes other than CR and HTAB, and single SPs between them.
    @inline(__always)
    private static func relaxedContentEnd(_ chunk: UnsafeRawBufferPointer, from start: Int) -> Int {
        let n = chunk.count
        var i = start
        while i < n {
            let b = chunk[i]
            if b > ASCII.sp {
                i += 1
            } else if b == ASCII.sp {
                guard i + 1 < n, chunk[i + 1] > ASCII.sp else { return i }
                i += 2
            } else if b == ASCII.cr || b == ASCII.tab {
                return i
            } else {
                i += 1
            }
        }
        return n
    }

    /// After a content byte: the next CR, where simple canonicalisation may have to act.
    @inline(__always)
    private static func simpleContentEnd(_ chunk: UnsafeRawBufferPointer, from start: Int) -> Int {
        guard start < chunk.count, let base = chunk.baseAddress else { return chunk.count }
        guard let found = memchr(base + start, Int32(ASCII.cr), chunk.count - start) else { return chunk.count }
        return UnsafeRawPointer(found) - base
    }

    /// Ends the body: a last line without CRLF gets one; the empty lines at the end are dropped;
    /// an empty simple body becomes one CRLF (RFC 6376 §3.4.3), an empty relaxed body stays empty.
    mutating func finish<Sink: CanonicalBodySink>(into sink: inout Sink) {
        if pendingCR {
            pendingCR = false
            flushPending(into: &sink)
            write(Self.cr, into: &sink)
            lineHasContent = true
        }
        if lineHasContent {
            write(Self.crlf, into: &sink)
            lineHasContent = false
        }
        pendingWhitespace = false
        pendingBlankLines = 0
        if !relaxed, canonicalLength == 0 {
            write(Self.crlf, into: &sink)
        }
    }
}
