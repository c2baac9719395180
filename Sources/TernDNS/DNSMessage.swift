public import NIOCore

/// A resource record TYPE (RFC 1035 §3.2.2); unknown values are kept as numbers.
public struct DNSRecordType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let a = DNSRecordType(rawValue: 1)
    public static let ns = DNSRecordType(rawValue: 2)
    public static let cname = DNSRecordType(rawValue: 5)
    public static let soa = DNSRecordType(rawValue: 6)
    public static let ptr = DNSRecordType(rawValue: 12)
    public static let mx = DNSRecordType(rawValue: 15)
    public static let txt = DNSRecordType(rawValue: 16)
    /// RFC 3596 §2.1.
    public static let aaaa = DNSRecordType(rawValue: 28)
    /// EDNS(0) pseudo-record (RFC 6891 §6.1.1).
    public static let opt = DNSRecordType(rawValue: 41)

    public var description: String {
        switch self {
        case .a: "A"
        case .ns: "NS"
        case .cname: "CNAME"
        case .soa: "SOA"
        case .ptr: "PTR"
        case .mx: "MX"
        case .txt: "TXT"
        case .aaaa: "AAAA"
        case .opt: "OPT"
        default: "TYPE\(rawValue)"
        }
    }
}

/// A CLASS (RFC 1035 §3.2.4). In an OPT record this field carries the UDP payload size instead.
public struct DNSClass: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let internet = DNSClass(rawValue: 1)
}

/// RCODE (RFC 1035 §4.1.1; the 4-bit header part only).
public struct DNSResponseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let noError = DNSResponseCode(rawValue: 0)
    public static let formatError = DNSResponseCode(rawValue: 1)
    public static let serverFailure = DNSResponseCode(rawValue: 2)
    /// Name Error: the queried name does not exist (RFC 1035 §4.1.1, RFC 2308 §2.1).
    public static let nameError = DNSResponseCode(rawValue: 3)
    public static let notImplemented = DNSResponseCode(rawValue: 4)
    public static let refused = DNSResponseCode(rawValue: 5)

    public var description: String {
        switch self {
        case .noError: "NOERROR"
        case .formatError: "FORMERR"
        case .serverFailure: "SERVFAIL"
        case .nameError: "NXDOMAIN"
        case .notImplemented: "NOTIMP"
        case .refused: "REFUSED"
        default: "RCODE\(rawValue)"
        }
    }
}

/// The fixed 12-octet header (RFC 1035 §4.1.1). Section counts are derived from the sections when encoding.
public struct DNSHeader: Hashable, Sendable {
    public var id: UInt16
    /// QR: this is a response.
    public var isResponse: Bool
    public var opcode: UInt8
    /// AA.
    public var isAuthoritative: Bool
    /// TC: the answer did not fit; ask again over TCP (RFC 7766 §5).
    public var isTruncated: Bool
    /// RD.
    public var recursionDesired: Bool
    /// RA.
    public var recursionAvailable: Bool
    /// AD (RFC 4035 §3.2.3).
    public var authenticData: Bool
    /// CD (RFC 4035 §3.2.2).
    public var checkingDisabled: Bool
    public var responseCode: DNSResponseCode

    public init(
        id: UInt16, isResponse: Bool = false, opcode: UInt8 = 0, isAuthoritative: Bool = false,
        isTruncated: Bool = false, recursionDesired: Bool = true, recursionAvailable: Bool = false,
        authenticData: Bool = false, checkingDisabled: Bool = false, responseCode: DNSResponseCode = .noError
    ) {
        self.id = id
        self.isResponse = isResponse
        self.opcode = opcode
        self.isAuthoritative = isAuthoritative
        self.isTruncated = isTruncated
        self.recursionDesired = recursionDesired
        self.recursionAvailable = recursionAvailable
        self.authenticData = authenticData
        self.checkingDisabled = checkingDisabled
        self.responseCode = responseCode
    }

    var flags: UInt16 {
        var flags: UInt16 = 0
        if isResponse { flags |= 0x8000 }
        flags |= UInt16(opcode & 0x0F) << 11
        if isAuthoritative { flags |= 0x0400 }
        if isTruncated { flags |= 0x0200 }
        if recursionDesired { flags |= 0x0100 }
        if recursionAvailable { flags |= 0x0080 }
        if authenticData { flags |= 0x0020 }
        if checkingDisabled { flags |= 0x0010 }
        flags |= UInt16(responseCode.rawValue & 0x0F)
        return flags
    }

    init(id: UInt16, flags: UInt16) {
        self.init(
            id: id,
            isResponse: flags & 0x8000 != 0,
            opcode: UInt8(flags >> 11 & 0x0F),
            isAuthoritative: flags & 0x0400 != 0,
            isTruncated: flags & 0x0200 != 0,
            recursionDesired: flags & 0x0100 != 0,
            recursionAvailable: flags & 0x0080 != 0,
            authenticData: flags & 0x0020 != 0,
            checkingDisabled: flags & 0x0010 != 0,
            responseCode: DNSResponseCode(rawValue: UInt8(flags & 0x0F))
        )
    }
}

/// A question entry (RFC 1035 §4.1.2).
public struct DNSQuestion: Hashable, Sendable {
    public var name: DNSName
    public var type: DNSRecordType
    public var recordClass: DNSClass

    public init(name: DNSName, type: DNSRecordType, recordClass: DNSClass = .internet) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
    }
}

/// An MX RDATA (RFC 1035 §3.3.9).
public struct MXRecord: Hashable, Sendable {
    /// Lower is preferred (RFC 5321 §5.1).
    public var preference: UInt16
    public var exchange: DNSName

    public init(preference: UInt16, exchange: DNSName) {
        self.preference = preference
        self.exchange = exchange
    }

    /// A null MX: the domain accepts no mail (RFC 7505 §3).
    public var isNullMX: Bool { exchange.isRoot }
}

/// A TXT RDATA: one or more character-strings (RFC 1035 §3.3.14).
public struct TXTRecord: Hashable, Sendable {
    /// Each character-string's octets, at most 255 each.
    public var strings: [[UInt8]]

    public init(strings: [[UInt8]]) { self.strings = strings }

    /// Builds a record from text, split into 255-octet character-strings.
    public init(_ text: String) {
        let bytes = Array(text.utf8)
        var strings: [[UInt8]] = []
        var start = 0
        repeat {
            let end = min(start + 255, bytes.count)
            strings.append(Array(bytes[start..<end]))
            start = end
        } while start < bytes.count
        self.strings = strings
    }

    /// The character-strings concatenated with nothing between them, as SPF (RFC 7208 §3.3) and
    /// DKIM (RFC 6376 §3.6.2.2) read a record.
    public var text: String { String(decoding: strings.joined(), as: UTF8.self) }
}

/// An SOA RDATA (RFC 1035 §3.3.13). `minimum` is the negative-caching TTL (RFC 2308 §4).
public struct SOARecord: Hashable, Sendable {
    public var primaryServer: DNSName
    public var responsibleMailbox: DNSName
    public var serial: UInt32
    public var refresh: UInt32
    public var retry: UInt32
    public var expire: UInt32
    public var minimum: UInt32

    public init(
        primaryServer: DNSName, responsibleMailbox: DNSName, serial: UInt32, refresh: UInt32, retry: UInt32,
        expire: UInt32, minimum: UInt32
    ) {
        self.primaryServer = primaryServer
        self.responsibleMailbox = responsibleMailbox
        self.serial = serial
        self.refresh = refresh
        self.retry = retry
        self.expire = expire
        self.minimum = minimum
    }
}

/// Typed RDATA. Types Tern has no use for are kept raw, uncompressed names inside them included.
public enum DNSRecordData: Hashable, Sendable {
    case a(IPv4Address)
    case aaaa(IPv6Address)
    case mx(MXRecord)
    case txt(TXTRecord)
    case cname(DNSName)
    case ns(DNSName)
    case soa(SOARecord)
    /// Any other type, including OPT: its RDATA octets as received.
    case unknown(DNSRecordType, [UInt8])

    public var type: DNSRecordType {
        switch self {
        case .a: .a
        case .aaaa: .aaaa
        case .mx: .mx
        case .txt: .txt
        case .cname: .cname
        case .ns: .ns
        case .soa: .soa
        case .unknown(let type, _): type
        }
    }
}

/// A resource record (RFC 1035 §3.2.1).
public struct DNSResourceRecord: Hashable, Sendable {
    public var name: DNSName
    public var recordClass: DNSClass
    /// Seconds. RFC 2181 §8: values with the top bit set are read as 0.
    public var ttl: UInt32
    public var data: DNSRecordData

    public var type: DNSRecordType { data.type }

    public init(name: DNSName, recordClass: DNSClass = .internet, ttl: UInt32, data: DNSRecordData) {
        self.name = name
        self.recordClass = recordClass
        self.ttl = ttl
        self.data = data
    }
}

/// A whole DNS message (RFC 1035 §4.1).
public struct DNSMessage: Hashable, Sendable {
    public var header: DNSHeader
    public var questions: [DNSQuestion]
    public var answers: [DNSResourceRecord]
    public var authorities: [DNSResourceRecord]
    public var additionals: [DNSResourceRecord]

    public init(
        header: DNSHeader, questions: [DNSQuestion] = [], answers: [DNSResourceRecord] = [],
        authorities: [DNSResourceRecord] = [], additionals: [DNSResourceRecord] = []
    ) {
        self.header = header
        self.questions = questions
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
    }
}

/// Named limits of the codec and resolver.
public enum DNSDefaults {
    /// The EDNS(0) UDP payload size we advertise: the DNS Flag Day 2020 value that avoids IP fragmentation.
    public static let ednsUDPPayloadSize: UInt16 = 1232
    /// Largest UDP datagram we accept.
    public static let maxUDPMessageSize = 65_535
    /// Largest records per section we decode; 65 535 is the wire maximum, but no real answer needs that many.
    public static let maxRecordsPerSection = 4096
}

extension DNSMessage {
    /// A recursive query with a single question and, unless `ednsPayloadSize` is nil, an EDNS(0) OPT record
    /// (RFC 1035 §4.1.1, RFC 6891 §6.1.2).
    public static func query(
        id: UInt16, name: DNSName, type: DNSRecordType, ednsPayloadSize: UInt16? = DNSDefaults.ednsUDPPayloadSize
    ) -> DNSMessage {
        var message = DNSMessage(header: DNSHeader(id: id, recursionDesired: true), questions: [DNSQuestion(name: name, type: type)])
        if let ednsPayloadSize {
            message.additionals.append(
                DNSResourceRecord(name: .root, recordClass: DNSClass(rawValue: ednsPayloadSize), ttl: 0, data: .unknown(.opt, []))
            )
        }
        return message
    }

    /// Names are written uncompressed; RFC 1035 §4.1.4 makes compression optional for senders.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(header.id)
        buffer.writeInteger(header.flags)
        buffer.writeInteger(UInt16(clamping: questions.count))
        buffer.writeInteger(UInt16(clamping: answers.count))
        buffer.writeInteger(UInt16(clamping: authorities.count))
        buffer.writeInteger(UInt16(clamping: additionals.count))
        for question in questions.prefix(Int(UInt16.max)) {
            question.name.write(to: &buffer)
            buffer.writeInteger(question.type.rawValue)
            buffer.writeInteger(question.recordClass.rawValue)
        }
        for record in (answers.prefix(Int(UInt16.max)) + authorities.prefix(Int(UInt16.max)) + additionals.prefix(Int(UInt16.max))) {
            record.write(to: &buffer)
        }
    }

    /// The encoded message.
    public var bytes: ByteBuffer {
        var buffer = ByteBuffer()
        write(to: &buffer)
        return buffer
    }

    /// Decodes a complete message: the readable bytes of `buffer` are exactly one DNS message (a UDP datagram,
    /// or a TCP frame without its length prefix). Compression pointers are relative to the reader index.
    /// - Throws: `DNSWireError` for any malformed or short input.
    public init(decoding buffer: ByteBuffer) throws(DNSWireError) {
        var reader = Reader(message: buffer)
        let id = try reader.readUInt16()
        let flags = try reader.readUInt16()
        let counts = [try reader.readUInt16(), try reader.readUInt16(), try reader.readUInt16(), try reader.readUInt16()]
        for count in counts where Int(count) > DNSDefaults.maxRecordsPerSection {
            throw DNSWireError(.badRData, "section count \(count) over the limit", offset: 4)
        }
        header = DNSHeader(id: id, flags: flags)
        questions = []
        for _ in 0..<counts[0] {
            let name = try reader.readName()
            let type = DNSRecordType(rawValue: try reader.readUInt16())
            let recordClass = DNSClass(rawValue: try reader.readUInt16())
            questions.append(DNSQuestion(name: name, type: type, recordClass: recordClass))
        }
        answers = try (0..<counts[1]).map { _ throws(DNSWireError) in try reader.readRecord() }
        authorities = try (0..<counts[2]).map { _ throws(DNSWireError) in try reader.readRecord() }
        additionals = try (0..<counts[3]).map { _ throws(DNSWireError) in try reader.readRecord() }
        // Trailing octets after the last record are ignored, as most resolvers do.
    }

    /// The EDNS(0) OPT record, if any (RFC 6891 §6.1.1).
    public var ednsPayloadSize: UInt16? {
        additionals.first(where: { $0.type == .opt }).map { $0.recordClass.rawValue }
    }
}

extension DNSResourceRecord {
    func write(to buffer: inout ByteBuffer) {
        name.write(to: &buffer)
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(recordClass.rawValue)
        buffer.writeInteger(ttl)
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt16(0))
        let start = buffer.writerIndex
        switch data {
        case .a(let address):
            buffer.writeInteger(address.value)
        case .aaaa(let address):
            buffer.writeBytes(address.bytes)
        case .mx(let mx):
            buffer.writeInteger(mx.preference)
            mx.exchange.write(to: &buffer)
        case .txt(let txt):
            for string in txt.strings {
                let bytes = string.prefix(255)
                buffer.writeInteger(UInt8(bytes.count))
                buffer.writeBytes(bytes)
            }
        case .cname(let name), .ns(let name):
            name.write(to: &buffer)
        case .soa(let soa):
            soa.primaryServer.write(to: &buffer)
            soa.responsibleMailbox.write(to: &buffer)
            for value in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] { buffer.writeInteger(value) }
        case .unknown(_, let bytes):
            buffer.writeBytes(bytes.prefix(Int(UInt16.max)))
        }
        buffer.setInteger(UInt16(clamping: buffer.writerIndex - start), at: lengthIndex)
    }
}

/// Absolute-position reader over one complete message; names may point anywhere before themselves.
struct Reader {
    let message: ByteBuffer
    var position: Int

    init(message: ByteBuffer) {
        self.message = message
        self.position = message.readerIndex
    }

    var offset: Int { position - message.readerIndex }

    mutating func readUInt8() throws(DNSWireError) -> UInt8 {
        guard position < message.writerIndex, let value = message.getInteger(at: position, as: UInt8.self) else {
            throw DNSWireError(.truncated, "message ends early", offset: offset)
        }
        position += 1
        return value
    }

    mutating func readUInt16() throws(DNSWireError) -> UInt16 {
        guard position + 2 <= message.writerIndex, let value = message.getInteger(at: position, as: UInt16.self) else {
            throw DNSWireError(.truncated, "message ends early", offset: offset)
        }
        position += 2
        return value
    }

    mutating func readUInt32() throws(DNSWireError) -> UInt32 {
        guard position + 4 <= message.writerIndex, let value = message.getInteger(at: position, as: UInt32.self) else {
            throw DNSWireError(.truncated, "message ends early", offset: offset)
        }
        position += 4
        return value
    }

    mutating func readBytes(_ count: Int) throws(DNSWireError) -> [UInt8] {
        guard position + count <= message.writerIndex, let bytes = message.getBytes(at: position, length: count) else {
            throw DNSWireError(.truncated, "message ends early", offset: offset)
        }
        position += count
        return bytes
    }

    mutating func readName() throws(DNSWireError) -> DNSName {
        let (name, end) = try DNSName.read(from: message, at: position)
        position = end
        return name
    }

    /// RFC 1035 §4.1.3.
    mutating func readRecord() throws(DNSWireError) -> DNSResourceRecord {
        let name = try readName()
        let type = DNSRecordType(rawValue: try readUInt16())
        let recordClass = DNSClass(rawValue: try readUInt16())
        let rawTTL = try readUInt32()
        let length = Int(try readUInt16())
        let start = position
        let end = start + length
        guard end <= message.writerIndex else {
            throw DNSWireError(.truncated, "RDATA runs past the end of the message", offset: offset)
        }
        let data: DNSRecordData
        switch type {
        case .a:
            guard length == 4 else { throw DNSWireError(.badRData, "A RDATA of \(length) octets", offset: offset) }
            data = .a(IPv4Address(value: try readUInt32()))
        case .aaaa:
            guard length == 16 else { throw DNSWireError(.badRData, "AAAA RDATA of \(length) octets", offset: offset) }
            guard let address = IPv6Address(bytes: try readBytes(16)) else {
                throw DNSWireError(.badRData, "AAAA RDATA", offset: offset)
            }
            data = .aaaa(address)
        case .mx:
            data = .mx(MXRecord(preference: try readUInt16(), exchange: try readName()))
        case .cname:
            data = .cname(try readName())
        case .ns:
            data = .ns(try readName())
        case .soa:
            let primary = try readName()
            let mailbox = try readName()
            data = .soa(
                SOARecord(
                    primaryServer: primary, responsibleMailbox: mailbox, serial: try readUInt32(), refresh: try readUInt32(),
                    retry: try readUInt32(), expire: try readUInt32(), minimum: try readUInt32()
                )
            )
        case .txt:
            guard length > 0 else { throw DNSWireError(.badRData, "empty TXT RDATA", offset: offset) }
            var strings: [[UInt8]] = []
            while position < end {
                let count = Int(try readUInt8())
                guard position + count <= end else {
                    throw DNSWireError(.badRData, "character-string runs past its RDATA", offset: offset)
                }
                strings.append(try readBytes(count))
            }
            data = .txt(TXTRecord(strings: strings))
        default:
            data = .unknown(type, try readBytes(length))
        }
        guard position == end else {
            throw DNSWireError(.badRData, "\(type) RDATA does not fill its length \(length)", offset: offset)
        }
        // RFC 2181 §8: a TTL with the most significant bit set is treated as zero.
        return DNSResourceRecord(name: name, recordClass: recordClass, ttl: rawTTL & 0x8000_0000 == 0 ? rawTTL : 0, data: data)
    }
}
