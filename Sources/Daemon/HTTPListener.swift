import Engine
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Playbooks
import ServiceLifecycle

/// One of medicd's small HTTP listeners: the metrics (`GET /metrics`, and `/`, in Prometheus's
/// text exposition format, on 127.0.0.1:9466 by default) and the fleet's health endpoint
/// (`GET /health` on the fleet address, for peers' probes). Anything else gets 404 or 405; a
/// request whose head is over 8 KiB, or that is not HTTP, is dropped. At most
/// `maximumConnections` are open at once (more are closed as they are accepted), and a
/// connection idle for `idleTimeout` is closed, so that nobody can use up medicd's descriptors.
/// A listener that cannot be opened (the port is taken) is logged and audited, and medicd goes
/// on healing without it.
struct HTTPListener: Service {
    /// What a route answers: status, content type, body.
    typealias Answer = (status: HTTPResponseStatus, type: String, body: [UInt8])

    /// What it serves, for logs: `metrics`, `fleet health`.
    let name: String
    /// What is said when it cannot listen: `metrics are not served`.
    let notServed: String
    let address: ListenAddress
    /// The paths served with GET (and HEAD), each with its answer.
    let routes: [String: @Sendable () -> Answer]
    let engine: Engine
    let logger: Logger

    /// The metrics page.
    static func metrics(_ metrics: MedicMetrics, address: ListenAddress, engine: Engine, logger: Logger) -> HTTPListener {
        let page: @Sendable () -> Answer = { (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics.registry.emitToBuffer()) }
        return HTTPListener(
            name: "metrics", notServed: "metrics are not served", address: address, routes: ["/metrics": page, "/": page], engine: engine, logger: logger)
    }

    static let maximumConnections = 64
    static let idleTimeout: TimeAmount = .seconds(5)

    func run() async throws {
        let channel: Channel
        do {
            channel = try await listen()
        } catch {
            let message = "\(notServed): cannot listen on \(address.host):\(address.port): \(error)"
            logger.error("\(message)")
            await engine.note(message)
            try? await gracefulShutdown()
            return
        }
        logger.info("serving \(name) at http://\(address.host):\(channel.localAddress?.port ?? address.port)\(routes.keys.sorted().last ?? "/")")
        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
    }

    private func listen() async throws -> Channel {
        let routes = self.routes
        let connections = ConnectionCount()
        return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard connections.open.add(1, ordering: .relaxed).newValue <= Self.maximumConnections else {
                    connections.open.subtract(1, ordering: .relaxed)
                    return channel.close()
                }
                channel.closeFuture.whenComplete { _ in connections.open.subtract(1, ordering: .relaxed) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: Self.idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(CloseWhenIdle())
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(RouteHandler(routes: routes))
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
    }
}

/// Closes a connection that sent nothing for the idle timeout.
private final class CloseWhenIdle: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

/// Answers one request at a time on a connection.
private final class RouteHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let routes: [String: @Sendable () -> HTTPListener.Answer]
    private var head: HTTPRequestHead?
    private var headBytes = 0

    init(routes: [String: @Sendable () -> HTTPListener.Answer]) { self.routes = routes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            headBytes = request.uri.utf8.count + request.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }
            head = request
        case .body:
            break
        case .end:
            guard let request = head else { return }
            head = nil
            guard headBytes <= 8192 else {
                context.close(promise: nil)
                return
            }
            let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
            let main = routes.keys.sorted().last ?? "/"
            switch (request.method, routes[path]) {
            case (.GET, let route?), (.HEAD, let route?):
                let answer = route()
                respond(context, request, answer.status, answer.type, request.method == .HEAD ? [] : answer.body)
            case (_, _?):
                respond(context, request, .methodNotAllowed, "text/plain", Array("only GET \(main)\n".utf8))
            default:
                respond(context, request, .notFound, "text/plain", Array("this listener serves \(main)\n".utf8))
            }
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus, _ type: String, _ body: [UInt8]) {
        var headers = HTTPHeaders([("Content-Type", type), ("Content-Length", String(body.count))])
        if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if !body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let keepAlive = request.isKeepAlive
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }
}
