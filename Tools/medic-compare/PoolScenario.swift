import Foundation
import Glibc
import TestHost

/// Scenario 3: three backends behind HAProxy at a steady 500 requests/s, and one of them crashes
/// (kill -9), hangs (SIGSTOP) or starts answering 503. Counts the requests a user noticed
/// (failed, or slower than 1 s) per fault, and how long the server stayed in rotation, for
/// HAProxy's own checks alone in several set-ups and for HAProxy with Medic. The set-ups run
/// side by side on one test host, each with its own three backends, HAProxy and load, and the
/// fault strikes all of them at the same moment.
struct PoolScenario {
    enum Fault: String, CaseIterable {
        case crash, hang, sick

        var what: String {
            switch self {
            case .crash: "kill -9"
            case .hang: "SIGSTOP (a hang)"
            case .sick: "answers 503"
            }
        }
    }

    /// One contender: HAProxy with these checks, with or without medicd beside it.
    struct Setup: Sendable {
        let checks: HAProxy.Checks
        let medic: Bool

        var name: String { medic ? "HAProxy + Medic" : "HAProxy alone" }
    }

    /// HAProxy alone with its default checks and with fast ones, each with and without
    /// `option redispatch`, and Medic beside HAProxy's defaults with redispatch.
    static let setups = [
        Setup(checks: .defaults, medic: false),
        Setup(checks: HAProxy.Checks(redispatch: true), medic: false),
        Setup(checks: HAProxy.Checks(parameters: "inter 500ms fall 2 rise 2"), medic: false),
        Setup(checks: HAProxy.Checks(parameters: "inter 500ms fall 2 rise 2", redispatch: true), medic: false),
        Setup(checks: HAProxy.Checks(parameters: "inter 500ms fall 2 rise 2", retryOn: true), medic: false),
        Setup(checks: HAProxy.Checks(retryOn: true), medic: true),
    ]

    static let rate = 500

    let medicd: String
    let rounds: Int
    let setups: [Setup]

    typealias Result = FaultFigures<Setup>

    /// Runs the scenario and prints its table: requests noticed, of them failed, time out of
    /// rotation, and how many times more requests were noticed than with Medic; returns what
    /// failed.
    func report() async throws -> [String] {
        let results = try await run()
        print("")
        print("3. Three backends behind HAProxy at \(Self.rate) requests/s, one of them faulted; \(rounds) faults of each kind, median / p99 per fault.")
        print("   Every set-up runs at the same time on the same host, each with its own backends, HAProxy and load; HAProxy alone leaves the server dead.")
        print(Table(header: ["fault", "contender", "HAProxy checks", "failed or > 1 s", "of them failed", "fault → out of rotation (ms)", "vs Medic"], rows: results.map { result in
            let medic = results.first { $0.fault == result.fault && $0.setup.medic }
            let ratio = result.setup.medic ? "" : medic.map { result.ratio(to: $0.affected) } ?? ""
            let affected = Spread(result.affected)
            return [result.fault.what, result.setup.name, result.setup.checks.description, affected?.counts ?? "",
                    Spread(result.failed)?.counts ?? "", Spread(result.outOfRotation)?.milliseconds ?? "never", ratio]
        }).render())
        return results.flatMap { result in result.failures.map { "\(result.fault) behind HAProxy: \(result.setup.name) (\(result.setup.checks)): \($0)" } }
    }

    func run() async throws -> [Result] {
        let host = try TestHost(name: "bench-pool", binds: [Backend.packageRoot])
        defer { host.destroy() }
        let ports = setups.map { _ in (0..<3).map { _ in freePort() } }
        let runtime = host.directory + "/run/medic-pool"
        try installBackends(
            host, names: setups.indices.map { s in (0..<3).map { Self.backend(s, $0) } }, ports: ports, medic: setups.map(\.medic),
            heartbeats: "/run/medic-pool/heartbeat.sock")
        let medicProxy = host.directory + "/haproxy-medic"
        let medic = try setups.firstIndex(where: \.medic).map { s in
            try RunningMedicd.start(
                medicd, on: host, playbooks: [Self.playbook(setup: s, ports: ports[s], socket: medicProxy + "/admin.sock")], runtime: runtime, metrics: false)
        }
        defer { medic?.stop() }

        var results = Fault.allCases.flatMap { fault in setups.map { Result(setup: $0, fault: fault) } }
        var recoveries = 0
        for _ in 1...rounds {
            for fault in Fault.allCases {
                try reset(host, units: setups.indices.filter { !setups[$0].medic }.map { Self.backend($0, 0) + ".service" }, ports: ports)
                let proxies = try setups.enumerated().map { s, setup in
                    try HAProxy(directory: setup.medic ? medicProxy : host.directory + "/haproxy-\(s)", backendPorts: ports[s], checks: setup.checks)
                }
                defer { proxies.forEach { $0.stop() } }
                // Past HAProxy's first checks; then at a random moment of their cycle.
                let strike = ContinuousClock.now + .milliseconds(Int64.random(in: 1000...1500))
                let pids = try setups.indices.map { s in
                    guard let pid = host.processes(ofUnit: Self.backend(s, 0) + ".service").first else { throw BenchFailure("\(Self.backend(s, 0)) is not running") }
                    return pid
                }
                let statusFiles = setups.indices.map { host.directory + "/run/\(Self.backend($0, 0)).status" }
                let runs = try await withThrowingTaskGroup(of: (Int, LoadResult, Double?).self) { group in
                    for (s, setup) in setups.enumerated() {
                        let proxy = proxies[s], pid = pids[s], statusFile = statusFiles[s]
                        group.addTask {
                            var out: Double?
                            let load = try await LoadResult.run(
                                port: proxy.port, rate: Self.rate, duration: .seconds(30), directory: proxy.directory, endsWithDuring: true
                            ) {
                                try await Task.sleep(until: strike)
                                let start = ContinuousClock.now
                                try Self.inject(fault, pid: pid, statusFile: statusFile)
                                out = await watchRotation({ (try? proxy.serverStatus()["s1"]).map { $0.hasPrefix("UP") } }, from: start, untilBack: setup.medic)
                                try await Task.sleep(for: .milliseconds(500))
                            }
                            return (s, load, out)
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                let first = Fault.allCases.firstIndex(of: fault)! * setups.count
                for (s, load, out) in runs { results[first + s].add(load, out: out, shown: true) }
                if let medic, let s = setups.firstIndex(where: \.medic) {
                    recoveries += 1
                    if !medic.waitForClosedIncidents(recoveries, outcome: "recovered") {
                        results[first + s].failures.append("Medic did not recover s1")
                        recoveries = medic.closedIncidents(outcome: "recovered")
                    } else if try proxies[s].serverStatus()["s1"]?.hasPrefix("MAINT") != false {
                        results[first + s].failures.append("Medic left s1 out of rotation")
                    }
                }
                proxies.forEach { $0.stop() }
            }
        }
        return results
    }

    /// Backend `i` (0, 1, 2 = HAProxy's s1, s2, s3) of set-up `s`.
    static func backend(_ s: Int, _ i: Int) -> String { "pool\(s)-app\(i + 1)" }

    static func inject(_ fault: Fault, pid: pid_t, statusFile: String) throws {
        switch fault {
        case .crash: kill(pid, SIGKILL)
        case .hang: kill(pid, SIGSTOP)
        case .sick: try "503\n".write(toFile: statusFile, atomically: true, encoding: .utf8)
        }
    }

    /// Puts the faulted backends of HAProxy alone back (Medic puts its own back): running,
    /// answering 200 (the status file goes at start), serving.
    private func reset(_ host: TestHost, units: [String], ports: [[Int]]) throws {
        _ = try host.runInside(["systemctl", "restart"] + units)
        for port in ports.joined() where waitUntilServing(port: port, timeout: .seconds(10)) == nil {
            throw BenchFailure("the backend on port \(port) did not serve after a restart")
        }
    }

    /// Medic beside HAProxy: the server leaves the pool, is restarted, verified and returned;
    /// guards loose enough for a fault every few seconds.
    static func playbook(setup s: Int, ports: [Int], socket: String) -> String {
        poolPlaybook(
            units: ports.indices.map { (unit: backend(s, $0) + ".service", port: ports[$0]) }, haproxySocket: socket,
            guards: #"{ rate: { restart: 10000 in 10m }, flap: 100000 in 5m, backoff: { initial: 10ms }, stabilise: 300ms, storm: "100% in 1m" }"#)
    }
}
