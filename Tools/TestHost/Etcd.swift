import Foundation
import Glibc
import Posix
import Synchronization

/// etcd from Debian's package (`etcd-server`), started by a test on loopback: one member, or
/// the members of a cluster (`EtcdCluster`). Each member is stopped by its PID (`stop()`, also
/// on deinit) and its data directory removed.
public final class EtcdMember: Sendable {
    public let name: String
    /// `http://127.0.0.1:PORT`, for clients.
    public let endpoint: String
    public let peerURL: String
    public let directory: String
    private let process: Mutex<ChildProcess?>
    private let arguments: [String]

    init(name: String, directory: String, scheme: String, host: String, clientPort: Int, peerPort: Int, cluster: String, extra: [String]) {
        self.name = name
        self.directory = directory
        endpoint = "\(scheme)://\(host):\(clientPort)"
        peerURL = "http://127.0.0.1:\(peerPort)"
        arguments = [
            "--name", name, "--data-dir", directory + "/data", "--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
            "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL, "--initial-cluster", cluster,
            "--initial-cluster-state", "new", "--initial-cluster-token", "medic-test", "--heartbeat-interval", "50", "--election-timeout", "500",
            "--log-level", "warn",
        ] + extra
        process = Mutex(nil)
    }

    deinit { stop() }

    /// Starts (or starts again, keeping its data) this member.
    public func start() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let child = try ChildProcess("/usr/bin/etcd", arguments, logPath: directory + "/etcd.log")
        process.withLock { $0 = child }
    }

    public var pid: pid_t? { process.withLock { $0?.pid } }
    public var output: String { process.withLock { $0?.output } ?? "" }

    /// Stops it by its PID (SIGTERM, then SIGKILL), thawed first if it was frozen.
    public func stop() {
        let child = process.withLock { child -> ChildProcess? in
            defer { child = nil }
            return child
        }
        if let pid = child?.pid { kill(pid, SIGCONT) }
        child?.stop(grace: .seconds(5))
    }

    /// Freezes it (SIGSTOP): its sockets still accept connections, and nothing answers.
    public func freeze() { if let pid { kill(pid, SIGSTOP) } }

    /// Lets a frozen member go on (SIGCONT).
    public func thaw() { if let pid { kill(pid, SIGCONT) } }

    /// Whether it answers a range request (or, over TLS, accepts a connection).
    public func answers() -> Bool {
        guard let address = SocketAddress(String(endpoint.drop { $0 != "/" }.dropFirst(2))) else { return false }
        // Over TLS, a connection accepted is as far as a plain socket can tell.
        if endpoint.hasPrefix("https") { return (try? Socket.connect(to: address)) != nil }
        let body = #"{"key":"aGVhbHRo"}"#
        let request = "POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        return (try? httpExchange(address, request, timeout: 1).status) == 200
    }
}

/// An etcd cluster of `size` members on loopback (one member for most tests, three where the
/// test is about a cluster), healthy when `init` returns; `stop()` (also on deinit) stops every
/// member by its PID and removes their directories.
public final class EtcdCluster: Sendable {
    public let members: [EtcdMember]
    public let directory: String

    /// Starts the members, serving clients on `host` (loopback, or a test network's gateway);
    /// `extra` arguments go to each (e.g. `--auth-token simple`).
    public init(size: Int = 1, directory: String, host: String = "127.0.0.1", scheme: String = "http", extra: [String] = []) throws {
        self.directory = directory
        let ports = (0..<size).map { _ in (freePort(), freePort()) }
        let cluster = ports.enumerated().map { "m\($0.offset + 1)=http://127.0.0.1:\($0.element.1)" }.joined(separator: ",")
        members = ports.enumerated().map { index, ports in
            EtcdMember(name: "m\(index + 1)", directory: directory + "/m\(index + 1)", scheme: scheme, host: host, clientPort: ports.0, peerPort: ports.1, cluster: cluster, extra: extra)
        }
        for member in members { try member.start() }
        let deadline = ContinuousClock.now + .seconds(20)
        while !members.allSatisfy({ $0.answers() }) {
            guard ContinuousClock.now < deadline else {
                let logs = members.map { "\($0.name): \($0.output)" }.joined(separator: "\n")
                stop()
                throw TestHostError.setup("etcd did not become healthy within 20 s:\n\(logs)")
            }
            usleep(50_000)
        }
    }

    deinit { stop() }

    /// Every member's client URL.
    public var endpoints: [String] { members.map(\.endpoint) }

    /// Stops every member by its PID and removes the data.
    public func stop() {
        for member in members { member.stop() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The client URL of the member that leads now.
    public func leaderEndpoint() throws -> String {
        let json = try ctl(["endpoint", "status", "-w", "json"])
        let entries = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] ?? []
        for entry in entries {
            guard let status = entry["Status"] as? [String: Any], let header = status["header"] as? [String: Any],
                  let member = header["member_id"] as? NSNumber, let leader = status["leader"] as? NSNumber, member == leader,
                  let endpoint = entry["Endpoint"] as? String
            else { continue }
            return endpoint
        }
        throw TestHostError.setup("no member of the etcd cluster says it leads: \(json)")
    }

    /// Runs `etcdctl` against the cluster (as root, or as `user` given `user:password`).
    @discardableResult
    public func ctl(_ arguments: [String], user: String? = nil) throws -> String {
        try runProgram(
            "/usr/bin/etcdctl", ["--endpoints", endpoints.joined(separator: ",")] + (user.map { ["--user", $0] } ?? []) + arguments,
            environment: ["ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"])
    }
}
