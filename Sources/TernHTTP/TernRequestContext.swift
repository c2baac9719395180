public import Hummingbird
public import NIOCore
public import TernCore

/// The request context of Tern's HTTP listener: Hummingbird's basic one plus the client's
/// address, which the tracking endpoints classify, and, on the API, whose data the request
/// may see.
public struct TernRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// Set by the API's key check: the tenants the request acts for. Nothing is visible
    /// before it is set.
    public var scope: TenantScope?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}
