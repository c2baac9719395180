/// A set of replacements and insertions over a byte buffer, applied in one pass so that every
/// byte outside them is copied as it was.
struct ByteSplice {
    private struct Edit {
        var range: Range<Int>
        var replacement: [UInt8]
        var rank: Int
        var sequence: Int
    }
    private var edits: [Edit] = []

    var isEmpty: Bool { edits.isEmpty }

    /// Replaces `range`. At one index, edits of lower `rank` go first.
    mutating func replace(_ range: Range<Int>, with replacement: [UInt8], rank: Int = 1) {
        edits.append(Edit(range: range, replacement: replacement, rank: rank, sequence: edits.count))
    }

    mutating func insert(_ bytes: [UInt8], at index: Int, rank: Int = 1) {
        replace(index..<index, with: bytes, rank: rank)
    }

    /// `source[range]` with the edits applied. At one index, edits go by rank, then insertions
    /// before a replacement, then in the order they were made; an edit overlapping an earlier one
    /// is dropped.
    func apply(to source: [UInt8], in range: Range<Int>? = nil) -> [UInt8] {
        let range = range ?? 0..<source.count
        let ordered = edits.sorted {
            if $0.range.lowerBound != $1.range.lowerBound { return $0.range.lowerBound < $1.range.lowerBound }
            if $0.rank != $1.rank { return $0.rank < $1.rank }
            if $0.range.isEmpty != $1.range.isEmpty { return $0.range.isEmpty }
            return $0.sequence < $1.sequence
        }
        var out: [UInt8] = []
        out.reserveCapacity(range.count + ordered.reduce(0) { $0 + $1.replacement.count })
        var cursor = range.lowerBound
        for edit in ordered where edit.range.lowerBound >= cursor && edit.range.upperBound <= range.upperBound {
            out += source[cursor..<edit.range.lowerBound]
            out += edit.replacement
            cursor = edit.range.upperBound
        }
        out += source[cursor..<range.upperBound]
        return out
    }
}

extension Array where Element == UInt8 {
    /// Non-overlapping occurrences of `pattern` in `range`, in order.
    func occurrences(of pattern: [UInt8], in range: Range<Int>) -> [Range<Int>] {
        guard let first = pattern.first, pattern.count <= range.count else { return [] }
        return withUnsafeBufferPointer { bytes in
            pattern.withUnsafeBufferPointer { pattern in
                var found: [Range<Int>] = []
                var i = range.lowerBound
                let last = range.upperBound - pattern.count
                outer: while i <= last {
                    guard bytes[i] == first else {
                        i += 1
                        continue
                    }
                    var k = 1
                    while k < pattern.count {
                        guard bytes[i + k] == pattern[k] else {
                            i += 1
                            continue outer
                        }
                        k += 1
                    }
                    found.append(i..<(i + pattern.count))
                    i += pattern.count
                }
                return found
            }
        }
    }
}
