import AsyncHTTPClient
import Foundation
import HTTPExchange
import NIOCore
import NIOHTTP1
import NIOSSL

/// etcd v3 through its JSON gateway (`/v3/…`, served by etcd 3.4 and later), over
/// async-http-client. Tries its endpoints in turn (a member lost, a leader changing), starting
/// with the last one that answered; authenticates with a user and password when given (the
/// token renewed when etcd says it is no longer valid), and over TLS with a client certificate
/// when given.
public actor EtcdGateway: FleetStore {
    /// How to reach and prove ourselves to etcd.
    public struct Connection: Sendable, Equatable {
        /// `http://HOST:PORT` or `https://HOST:PORT`, one per member.
        public var endpoints: [String]
        /// An etcd user and its password, when etcd has auth enabled.
        public var user: (name: String, password: String)?
        /// PEM files: the CA that signed etcd's certificate, and our certificate and key.
        public var caFile: String?
        public var certificateFile: String?
        public var keyFile: String?
        /// How long one request may take, on one endpoint.
        public var timeout: Duration

        public init(
            endpoints: [String], user: (name: String, password: String)? = nil, caFile: String? = nil, certificateFile: String? = nil,
            keyFile: String? = nil, timeout: Duration = .seconds(2)
        ) {
            self.endpoints = endpoints
            self.user = user
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.timeout = timeout
        }

        public static func == (a: Connection, b: Connection) -> Bool {
            a.endpoints == b.endpoints && a.user?.name == b.user?.name && a.user?.password == b.user?.password && a.caFile == b.caFile
                && a.certificateFile == b.certificateFile && a.keyFile == b.keyFile && a.timeout == b.timeout
        }
    }

    public let connection: Connection
    /// Told of every request: its path, how long it took, and its failure if it failed.
    private let observe: (@Sendable (String, Duration, FleetStoreError?) -> Void)?
    private let client: HTTPClient
    private var current = 0
    private var token: String?

    public init(_ connection: Connection, observe: (@Sendable (String, Duration, FleetStoreError?) -> Void)? = nil) throws(FleetStoreError) {
        self.connection = connection
        self.observe = observe
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .milliseconds(Int64(connection.timeout.components.seconds * 1000 + 500)))
        if connection.caFile != nil || connection.certificateFile != nil {
            var tls = TLSConfiguration.makeClientConfiguration()
            do {
                if let ca = connection.caFile { tls.trustRoots = .file(ca) }
                if let certificate = connection.certificateFile {
                    tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
                }
                if let key = connection.keyFile { tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)) }
            } catch {
                throw FleetStoreError(.failed, "cannot read the TLS files for etcd: \(error)")
            }
            configuration.tlsConfiguration = tls
        }
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit { try? client.syncShutdown() }

    /// Closes its connections; call once done with it.
    public func shutdown() async { try? await client.shutdown() }

    // MARK: FleetStore

    public func grant(ttl: Duration) async throws(FleetStoreError) -> Lease {
        let answer: EtcdJSON.Grant = try await call("lease/grant", ["TTL": String(ttl.components.seconds)])
        guard let id = answer.ID.flatMap(Int64.init) else { throw FleetStoreError(.failed, "etcd granted no lease: \(answer.error ?? "no ID")") }
        return Lease(id: id, ttl: .seconds(Int64(answer.TTL ?? "") ?? ttl.components.seconds))
    }

    public func keepAlive(_ lease: Int64) async throws(FleetStoreError) -> Duration? {
        let answer: EtcdJSON.KeepAlive = try await call("lease/keepalive", ["ID": String(lease)])
        // An expired lease: 200, and no TTL.
        guard let ttl = answer.result?.TTL.flatMap(Int64.init), ttl > 0 else { return nil }
        return .seconds(ttl)
    }

    public func revoke(_ lease: Int64) async throws(FleetStoreError) {
        let _: EtcdJSON.Put = try await call("lease/revoke", ["ID": String(lease)])
    }

    @discardableResult
    public func put(_ key: String, _ value: [UInt8], lease: Int64?) async throws(FleetStoreError) -> Int64 {
        var body: [String: Any] = ["key": EtcdJSON.base64(key), "value": EtcdJSON.base64(value)]
        if let lease { body["lease"] = String(lease) }
        let answer: EtcdJSON.Put = try await call("kv/put", body)
        return Int64(answer.header?.revision ?? "0") ?? 0
    }

    public func create(_ key: String, _ value: [UInt8], lease: Int64?) async throws(FleetStoreError) -> (created: Bool, now: StoredKey?) {
        var put: [String: Any] = ["key": EtcdJSON.base64(key), "value": EtcdJSON.base64(value)]
        if let lease { put["lease"] = String(lease) }
        let answer: EtcdJSON.Txn = try await call("kv/txn", [
            "compare": [["key": EtcdJSON.base64(key), "target": "CREATE", "create_revision": "0", "result": "EQUAL"]],
            "success": [["request_put": put]],
            "failure": [["request_range": ["key": EtcdJSON.base64(key)]]],
        ])
        if answer.succeeded == true { return (true, try await get(key)) }
        return (false, answer.responses?.first?.response_range?.kvs?.first?.stored)
    }

    public func range(_ key: String, prefix: Bool) async throws(FleetStoreError) -> (keys: [StoredKey], revision: Int64) {
        let answer: EtcdJSON.Range = try await call("kv/range", EtcdJSON.keyRange(key, prefix: prefix))
        return ((answer.kvs ?? []).map(\.stored), Int64(answer.header?.revision ?? "0") ?? 0)
    }

    public func delete(_ key: String, prefix: Bool) async throws(FleetStoreError) -> Int {
        let answer: EtcdJSON.Delete = try await call("kv/deleterange", EtcdJSON.keyRange(key, prefix: prefix))
        return Int(answer.deleted ?? "0") ?? 0
    }

    /// A watch ends (with an error, so that its reader starts another) when etcd ends it, and
    /// also when a request to the member that serves it goes unanswered: a frozen member keeps
    /// its connections open and sends nothing, and a watch on it would be silent for ever.
    public nonisolated func watch(prefix: String, from revision: Int64) -> AsyncThrowingStream<[WatchEvent], Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                let id = await self.watching { continuation.finish(throwing: $0) }
                do {
                    try await self.follow(prefix: prefix, from: revision, id: id) { continuation.yield($0) }
                    continuation.finish(throwing: FleetStoreError(.unreachable, "etcd ended the watch on \(prefix)"))
                } catch {
                    continuation.finish(throwing: error)
                }
                await self.unwatched(id)
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Open watches: the endpoint each is on (once its request is sent), and how to end it.
    private var watches: [Int: (endpoint: String?, end: @Sendable (Error) -> Void)] = [:]
    private var nextWatch = 0

    private func watching(end: @escaping @Sendable (Error) -> Void) -> Int {
        nextWatch += 1
        watches[nextWatch] = (nil, end)
        return nextWatch
    }

    private func unwatched(_ id: Int) { watches[id] = nil }

    /// Ends the watches on `endpoint`, which has stopped answering.
    private func abandonWatches(on endpoint: String, _ why: FleetStoreError) {
        for (id, watch) in watches where watch.endpoint == endpoint {
            watches[id] = nil
            watch.end(FleetStoreError(.unreachable, "the watch's member stopped answering: \(why)"))
        }
    }

    // MARK: Requests

    /// One watch request, its answers read line by line until the connection ends.
    private func follow(prefix: String, from revision: Int64, id: Int, _ deliver: ([WatchEvent]) -> Void) async throws {
        var create = EtcdJSON.keyRange(prefix, prefix: true)
        create["start_revision"] = String(revision)
        let request = try await request("watch", try JSONSerialization.data(withJSONObject: ["create_request": create]))
        watches[id]?.endpoint = endpoint
        let response = try await client.execute(request, deadline: .now() + .hours(24 * 365))
        guard response.status == .ok else {
            throw Self.failure(response.status, Array(buffer: try await response.body.collect(upTo: 1 << 20)), "watch")
        }
        var pending: [UInt8] = []
        for try await chunk in response.body {
            pending += chunk.readableBytesView
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(pending[..<newline])
                pending.removeSubrange(...newline)
                guard let message = try? JSONDecoder().decode(EtcdJSON.Watch.self, from: Data(line)) else { continue }
                if let error = message.error {
                    throw FleetStoreError(.failed, "etcd ended the watch on \(prefix): \(error.message ?? error.error ?? "an error")")
                }
                guard let result = message.result else { continue }
                if result.canceled == true {
                    throw FleetStoreError(.failed, "etcd cancelled the watch on \(prefix): \(result.cancel_reason ?? "compacted at \(result.compact_revision ?? "?")")")
                }
                let events = (result.events ?? []).compactMap { event -> WatchEvent? in
                    guard let kv = event.kv else { return nil }
                    return event.type == "DELETE" ? .delete(key: kv.stored.key, revision: kv.stored.modRevision) : .put(kv.stored)
                }
                if !events.isEmpty { deliver(events) }
            }
        }
    }

    /// POSTs `body` to `/v3/PATH` and decodes the answer: on the current endpoint, then on the
    /// others in turn if it cannot be reached; authenticating first, and once again if etcd
    /// says the token is no longer valid.
    private func call<Answer: Decodable>(_ path: String, _ body: [String: Any]) async throws(FleetStoreError) -> Answer {
        let started = ContinuousClock.now
        do {
            let answer: Answer = try await attempt(path, body)
            observe?(path, ContinuousClock.now - started, nil)
            return answer
        } catch {
            observe?(path, ContinuousClock.now - started, error)
            throw error
        }
    }

    private func attempt<Answer: Decodable>(_ path: String, _ body: [String: Any]) async throws(FleetStoreError) -> Answer {
        var lastError = FleetStoreError(.unreachable, "no etcd endpoint configured")
        var renewed = false
        var attempt = 0
        guard let json = try? JSONSerialization.data(withJSONObject: body) else { throw FleetStoreError(.failed, "cannot encode \(path)'s request") }
        while attempt < connection.endpoints.count {
            do {
                // Bounded as a whole, answer included: a member that accepted the request and went
                // quiet (frozen, cut off mid-answer) costs one timeout, then the next member is asked.
                let answer = try await client.exchange(try await request(path, json), timeout: connection.timeout, upTo: 16 << 20)
                let (status, bytes) = (answer.status, Array(buffer: answer.body))
                guard status == .ok else {
                    let failure = Self.failure(status, bytes, path)
                    if failure.kind == .denied, failure.description.contains("token"), connection.user != nil, !renewed {
                        token = nil
                        renewed = true
                        continue
                    }
                    if Self.isTransient(failure) {
                        lastError = failure
                        advance()
                        attempt += 1
                        continue
                    }
                    throw failure
                }
                guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(bytes)) else {
                    throw FleetStoreError(.failed, "etcd at \(endpoint) answered \(path) with something that is not its JSON: \(String(decoding: bytes.prefix(200), as: UTF8.self))")
                }
                return answer
            } catch let error as FleetStoreError {
                throw error
            } catch {
                lastError = FleetStoreError(.unreachable, "etcd at \(endpoint) is unreachable: \(error)")
                abandonWatches(on: endpoint, lastError)
                advance()
                attempt += 1
            }
        }
        throw lastError
    }

    private var endpoint: String { connection.endpoints.isEmpty ? "(none)" : connection.endpoints[current % connection.endpoints.count] }

    private func advance() { current = (current + 1) % max(1, connection.endpoints.count) }

    /// A POST to the current endpoint, with the auth token (fetched first if there is none).
    private func request(_ path: String, _ json: Data) async throws -> HTTPClientRequest {
        var request = HTTPClientRequest(url: endpoint + "/v3/" + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let user = connection.user {
            if token == nil { token = try await authenticate(user) }
            request.headers.add(name: "Authorization", value: token ?? "")
        }
        request.body = .bytes(ByteBuffer(bytes: json))
        return request
    }

    private func authenticate(_ user: (name: String, password: String)) async throws -> String {
        var request = HTTPClientRequest(url: endpoint + "/v3/auth/authenticate")
        request.method = .POST
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: ["name": user.name, "password": user.password])))
        let answer = try await client.exchange(request, timeout: connection.timeout, upTo: 1 << 20)
        let bytes = Array(buffer: answer.body)
        guard answer.status == .ok, let token = (try? JSONDecoder().decode(EtcdJSON.Token.self, from: Data(bytes)))?.token else {
            throw Self.failure(answer.status, bytes, "auth/authenticate")
        }
        return token
    }

    /// etcd's error answer, as a `FleetStoreError` of the right kind.
    private static func failure(_ status: HTTPResponseStatus, _ bytes: [UInt8], _ path: String) -> FleetStoreError {
        let failure = try? JSONDecoder().decode(EtcdJSON.Failure.self, from: Data(bytes))
        let message = failure?.message ?? failure?.error ?? String(decoding: bytes.prefix(200), as: UTF8.self)
        let text = "etcd refused \(path): \(message) (HTTP \(status.code))"
        // gRPC codes: 7 permission denied, 16 unauthenticated; 3 with an auth message.
        if [7, 16].contains(failure?.code ?? 0) || ["auth", "permission denied", "user name is empty"].contains(where: message.contains) {
            return FleetStoreError(.denied, text)
        }
        if message.contains("lease not found") { return FleetStoreError(.leaseNotFound, text) }
        return FleetStoreError(.failed, text)
    }

    /// A failure another member may not have: no leader, a leader change, a timeout.
    private static func isTransient(_ error: FleetStoreError) -> Bool {
        ["no leader", "leader changed", "timed out", "not capable", "unavailable", "HTTP 503"].contains { error.description.contains($0) }
    }
}
