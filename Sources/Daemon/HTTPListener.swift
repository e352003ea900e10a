import Engine
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Playbooks
import ServiceLifecycle

/// One of medicd's small HTTP listeners: the metrics (`GET /metrics`, and `/`, in Prometheus's
/// text exposition format, on 127.0.0.1:9466 by default), the fleet's health endpoint
/// (`GET /health` on the fleet address, for peers' probes) and Alertmanager's webhook
/// (`POST /alertmanager`, when configured, over TLS when it says so). Anything else gets 404 or
/// 405; a request whose head is over 8 KiB, or that is not HTTP, is dropped; a body over the
/// route's limit is refused with 413 and the connection closed, unread. At most
/// `maximumConnections` are open at once (more are closed as they are accepted), and a
/// connection idle for `idleTimeout` is closed, so that nobody can use up medicd's descriptors.
/// A listener that cannot be opened (the port is taken) is logged and audited, and medicd goes
/// on healing without it.
struct HTTPListener: Service {
    /// What a route answers: status, content type, body.
    typealias Answer = (status: HTTPResponseStatus, type: String, body: [UInt8])

    /// A request as a route sees it.
    struct Request: Sendable {
        var head: HTTPRequestHead
        var body: [UInt8]
    }

    /// What a path answers, and to which method.
    struct Route: Sendable {
        /// GET (HEAD too) for a page, POST for a webhook.
        var method: HTTPMethod
        /// The largest body taken (a page takes none).
        var maximumBody = 0
        /// Said of a body too large (413), for the route's own counting.
        var onTooLarge: (@Sendable () -> Void)?
        var answer: @Sendable (Request) async -> Answer

        /// A page served with GET.
        static func page(_ answer: @escaping @Sendable () -> Answer) -> Route {
            Route(method: .GET) { _ in answer() }
        }
    }

    /// What it serves, for logs: `metrics`, `fleet health`.
    let name: String
    /// What is said when it cannot listen: `metrics are not served`.
    let notServed: String
    let address: ListenAddress
    /// The paths served, each with its answer.
    let routes: [String: Route]
    /// TLS, when the listener serves it.
    var tls: NIOSSLContext?
    let engine: Engine
    let logger: Logger

    /// The metrics page.
    static func metrics(_ metrics: MedicMetrics, address: ListenAddress, engine: Engine, logger: Logger) -> HTTPListener {
        let page: @Sendable () -> Answer = { (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics.registry.emitToBuffer()) }
        return HTTPListener(
            name: "metrics", notServed: "metrics are not served", address: address, routes: ["/metrics": .page(page), "/": .page(page)], engine: engine, logger: logger)
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
        logger.info("serving \(name) at http\(tls == nil ? "" : "s")://\(address.host):\(channel.localAddress?.port ?? address.port)\(routes.keys.sorted().last ?? "/")")
        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
    }

    private func listen() async throws -> Channel {
        let routes = self.routes
        let tls = self.tls
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
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
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

    private let routes: [String: HTTPListener.Route]
    private var head: HTTPRequestHead?
    private var headBytes = 0
    private var body: [UInt8] = []
    /// A request refused before its end (a body too large): the rest of it is not read.
    private var refused = false

    init(routes: [String: HTTPListener.Route]) { self.routes = routes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            headBytes = request.uri.utf8.count + request.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }
            head = request
            body = []
            refused = false
            if let route = routes[Self.path(request)], route.method == .POST, request.method == .POST,
               let length = request.headers.first(name: "content-length").flatMap(Int.init), length > route.maximumBody {
                tooLarge(context, request, route)
            }
        case .body(var buffer):
            guard let request = head, !refused else { return }
            let route = routes[Self.path(request)]
            guard let route, route.method == .POST, request.method == .POST else { return }
            guard body.count + buffer.readableBytes <= route.maximumBody else {
                tooLarge(context, request, route)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let request = head else { return }
            head = nil
            guard !refused else {
                context.close(promise: nil)
                return
            }
            guard headBytes <= 8192 else {
                context.close(promise: nil)
                return
            }
            let main = routes.keys.sorted().last ?? "/"
            switch routes[Self.path(request)] {
            case let route? where route.method == request.method || (route.method == .GET && request.method == .HEAD):
                let answered = context.eventLoop.makePromise(of: HTTPListener.Answer.self)
                let call = HTTPListener.Request(head: request, body: body)
                body = []
                answered.completeWithTask { await route.answer(call) }
                answered.futureResult.whenSuccess { answer in
                    self.respond(context, request, answer.status, answer.type, request.method == .HEAD ? [] : answer.body)
                }
            case let route?:
                respond(context, request, .methodNotAllowed, "text/plain", Array("only \(route.method) \(main)\n".utf8))
            default:
                respond(context, request, .notFound, "text/plain", Array("this listener serves \(main)\n".utf8))
            }
        }
    }

    private static func path(_ request: HTTPRequestHead) -> String {
        request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
    }

    /// 413, and the connection closed once the rest of the request has been read and thrown
    /// away, or after 2 s: closing with input unread would reset the connection, and the client
    /// might never see the answer.
    private func tooLarge(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ route: HTTPListener.Route) {
        refused = true
        body = []
        route.onTooLarge?()
        respond(context, request, .payloadTooLarge, "text/plain", Array("the body is over \(route.maximumBody) bytes\n".utf8), lingering: true)
        context.eventLoop.scheduleTask(in: .seconds(2)) { context.close(promise: nil) }
    }

    /// Answers; closes after the answer when the request did not ask to keep the connection
    /// (or `close` says so: `.lingering` leaves the closing to `tooLarge`).
    private func respond(
        _ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus, _ type: String, _ body: [UInt8], lingering: Bool = false
    ) {
        var headers = HTTPHeaders([("Content-Type", type), ("Content-Length", String(body.count))])
        if !request.isKeepAlive || lingering { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if !body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let close = !request.isKeepAlive && !lingering
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if close { context.close(promise: nil) }
        }
    }
}
