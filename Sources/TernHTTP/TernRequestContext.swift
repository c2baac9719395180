public import Hummingbird
public import NIOCore

/// The request context of Tern's HTTP listener: Hummingbird's basic one plus the client's
/// address, which the tracking endpoints classify.
public struct TernRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}
