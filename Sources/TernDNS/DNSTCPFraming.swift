public import NIOCore

/// DNS over TCP frames each message with a two-octet length (RFC 1035 §4.2.2, RFC 7766 §8).
public enum DNSTCPFraming {
    /// The message with its length prefix.
    public static func frame(_ message: DNSMessage) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt16(0))
        message.write(to: &buffer)
        buffer.setInteger(UInt16(clamping: buffer.readableBytes - 2), at: buffer.readerIndex)
        return buffer
    }

    /// The next whole message's bytes, or nil if more bytes are needed (the reader index is then unchanged).
    public static func nextFrame(from buffer: inout ByteBuffer) -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              buffer.readableBytes >= 2 + Int(length)
        else { return nil }
        buffer.moveReaderIndex(forwardBy: 2)
        return buffer.readSlice(length: Int(length))
    }
}

/// Splits a TCP byte stream into DNS messages (still encoded).
struct DNSTCPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = DNSTCPFraming.nextFrame(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}
