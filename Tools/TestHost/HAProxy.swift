import Foundation
import Glibc
import Posix

/// HAProxy from Debian's package, started by a test on loopback: one frontend balancing one
/// backend (`app`) of servers `s1`, `s2`, … with an admin socket for the runtime API. Stopped
/// by its PID (`stop()`, also on deinit).
public final class HAProxy: @unchecked Sendable {
    /// How HAProxy's own health checks are set up.
    public struct Checks: Sendable, CustomStringConvertible {
        /// The `server … check` parameters, e.g. `inter 2s fall 3 rise 2` (HAProxy's defaults).
        public var parameters: String
        /// `option redispatch` with `retries 3`: a connection refused by one server is retried on another.
        public var redispatch: Bool
        /// Layer-7 retries (HAProxy 2.0+) beside redispatch: `retry-on conn-failure
        /// empty-response response-timeout`, so that a request a server took and closed without
        /// answering (it was killed, or restarted) is sent again, to another server.
        public var retryOn: Bool

        public init(parameters: String = "inter 2s fall 3 rise 2", redispatch: Bool = false, retryOn: Bool = false) {
            self.parameters = parameters
            self.redispatch = redispatch || retryOn
            self.retryOn = retryOn
        }

        /// HAProxy's defaults: checks every 2 s, down after 3 failures, no redispatch.
        public static let defaults = Checks()

        public var description: String { parameters + (retryOn ? ", redispatch + retry-on" : redispatch ? ", option redispatch" : "") }

        /// The lines of the `defaults` section these set.
        var configuration: String {
            if retryOn { return "    option redispatch 1\n    retries 3\n    retry-on conn-failure empty-response response-timeout" }
            return redispatch ? "    option redispatch\n    retries 3" : "    retries 0"
        }
    }

    public let directory: String
    /// The admin socket (`level admin`): a path, or `127.0.0.1:PORT` for medicds inside test
    /// hosts (which have a /tmp of their own).
    public let socket: String
    /// Where the frontend listens on 127.0.0.1.
    public let port: Int
    private let process: ChildProcess

    /// Writes the configuration into `directory` and starts HAProxy; returns once its admin
    /// socket answers. `serverTimeout` is how long a request may wait for a server's answer.
    /// `backendPorts`: servers on 127.0.0.1; `servers`, given, are `HOST:PORT` anywhere (test
    /// hosts' addresses). `adminOverTCP`: the admin socket on `listen`, for medicds inside test
    /// hosts (which have a /tmp, and maybe a network, of their own).
    public init(
        directory: String, backendPorts: [Int] = [], servers: [String]? = nil, checks: Checks = .defaults, serverTimeout: String = "2s",
        adminOverTCP: Bool = false, listen: String = "127.0.0.1"
    ) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        socket = adminOverTCP ? "\(listen):\(freePort())" : directory + "/admin.sock"
        port = freePort()
        let servers = (servers ?? backendPorts.map { "127.0.0.1:\($0)" }).enumerated().map { index, address in
            "    server s\(index + 1) \(address) check \(checks.parameters)"
        }
        let config = """
            global
                stats socket \(adminOverTCP ? "ipv4@" + socket : socket + " mode 600") level admin
                maxconn 8000
            defaults
                mode http
                timeout connect 1s
                timeout client 10s
                timeout server \(serverTimeout)
                timeout check 1s
            \(checks.configuration)
            frontend web
                bind 127.0.0.1:\(port)
                default_backend app
            backend app
                balance roundrobin
                option httpchk GET /health
            \(servers.joined(separator: "\n"))

            """
        try config.write(toFile: directory + "/haproxy.cfg", atomically: true, encoding: .utf8)
        try? FileManager.default.removeItem(atPath: socket)
        process = try ChildProcess("/usr/sbin/haproxy", ["-db", "-f", directory + "/haproxy.cfg"], logPath: directory + "/haproxy.log")
        let deadline = ContinuousClock.now + .seconds(10)
        while (try? command("show info")) == nil {
            guard process.isRunning, ContinuousClock.now < deadline else {
                process.stop()
                throw TestHostError.setup("HAProxy did not start:\n\(process.output)")
            }
            usleep(10_000)
        }
    }

    deinit { stop() }

    public var pid: pid_t { process.pid }

    /// Stops HAProxy by its PID.
    public func stop() { process.stop(grace: .seconds(2)) }

    /// Sends one runtime-API command and returns the answer.
    public func command(_ text: String) throws -> String {
        let connection = try Socket.connect(to: SocketAddress(socket) ?? .unix(socket), timeout: .seconds(5))
        defer { connection.close() }
        try connection.send(text + "\n")
        return String(decoding: try connection.receiveAll(), as: UTF8.self)
    }

    /// Each server's status as `show stat` gives it (`UP`, `DOWN`, `MAINT`, `DRAIN`, …), by name.
    public func serverStatus() throws -> [String: String] {
        let lines = try command("show stat").split(separator: "\n")
        guard let header = lines.first else { return [:] }
        let columns = header.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false)
        guard let sv = columns.firstIndex(of: "svname"), let px = columns.firstIndex(of: "pxname"), let st = columns.firstIndex(of: "status") else { return [:] }
        var result: [String: String] = [:]
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count > max(sv, st), fields[px] == "app", fields[sv] != "BACKEND" else { continue }
            result[String(fields[sv])] = String(fields[st])
        }
        return result
    }
}

/// A steady stream of requests (`backend/medic-load.c`) against a port, counted at the end.
public struct LoadResult: Sendable, Decodable, CustomStringConvertible {
    public var sent: Int
    public var ok: Int
    public var failed: Int
    public var stalled: Int
    /// Failed or stalled: the requests a user noticed.
    public var affected: Int
    public var errors: Int
    public var timeouts: Int
    public var status: [String: Int]

    public var description: String {
        "\(sent) sent, \(ok) ok, \(failed) failed, \(stalled) stalled"
            + (status.isEmpty ? "" : " (" + status.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + ")")
    }

    /// Runs the load generator for `duration` at `rate` per second while `during` runs; returns
    /// the counts once every request has ended. With `endsWithDuring`, the sending stops as soon
    /// as `during` returns (`duration` is then the longest it may run).
    public static func run(
        port: Int, rate: Int, duration: Duration, stall: Duration = .seconds(1), directory: String, endsWithDuring: Bool = false,
        during: () async throws -> Void
    ) async throws -> LoadResult {
        let load = try ChildProcess(
            try Backend.loadGenerator(),
            ["--port", String(port), "--rate", String(rate), "--duration-ms", String(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000),
             "--timeout-ms", "10000", "--stall-ms", String(stall.components.seconds * 1000 + stall.components.attoseconds / 1_000_000_000_000_000)],
            logPath: directory + "/load-\(getpid())-\(Int.random(in: 0..<1_000_000)).log")
        defer { load.stop() }
        try await during()
        if endsWithDuring { load.signal(SIGTERM) }
        // Polled without blocking a thread, so that many loads can run side by side.
        let deadline = ContinuousClock.now + duration + .seconds(15)
        while load.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        guard load.waitForExit(timeout: .zero) == 0 else {
            throw TestHostError.setup("the load generator did not finish: \(load.output)")
        }
        guard let line = load.output.split(separator: "\n").last(where: { $0.hasPrefix("{") }) else {
            throw TestHostError.setup("the load generator printed no result: \(load.output)")
        }
        return try JSONDecoder().decode(LoadResult.self, from: Data(line.utf8))
    }
}
