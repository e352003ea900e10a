import Foundation
import Glibc
import TestHost

/// Scenario 9: scenario 3's faults behind Varnish and behind nginx instead of HAProxy. Three
/// backends at a steady 500 requests/s, one of them crashes, hangs or answers 503; each balancer
/// with its own health checking alone, and with Medic beside it (the same playbook as scenario
/// 3, its `pool:` line naming the balancer). The set-ups of one balancer run at once on one test host, each
/// with its own backends, balancer and load. Each balancer alone is measured as it comes and
/// with retries on another backend; Medic's has the retries.
struct FrontScenario {
    enum Front: String, CaseIterable {
        case varnish = "Varnish", nginx

    }

    struct Setup: Sendable {
        let front: Front
        let medic: Bool
        /// A request that failed, or was answered 5xx, is sent again to another backend:
        /// Varnish's `return (retry)` in `vcl_backend_error` and (GET and HEAD) in
        /// `vcl_backend_response`; nginx's `proxy_next_upstream` with `http_502 http_503 http_504`.
        var retry = false

        var name: String { "\(front.rawValue) \(medic ? "+ Medic" : "alone")" }

        /// The balancer's own health checking, as set up here.
        var checks: String {
            switch front {
            case .varnish: "probe every 500ms, sick at 2 of 3; first_byte_timeout 2s" + (retry ? "; retry on errors and 5xx" : "")
            case .nginx: "passive: max_fails=1 fail_timeout=10s; next upstream on error, timeout" + (retry ? ", 502, 503, 504" : "") + "; read timeout 2s"
            }
        }
    }

    static let setups = [
        Setup(front: .varnish, medic: false), Setup(front: .varnish, medic: false, retry: true), Setup(front: .varnish, medic: true, retry: true),
        Setup(front: .nginx, medic: false), Setup(front: .nginx, medic: false, retry: true), Setup(front: .nginx, medic: true, retry: true),
    ]
    static let rate = 500

    let medicd: String
    let rounds: Int
    let setups: [Setup]

    typealias Result = FaultFigures<Setup>

    func report() async throws -> [String] {
        // One balancer at a time: seven set-ups at 500 requests/s each are more than 2 cores carry.
        var results: [Result] = []
        for front in Front.allCases { results += try await run(setups.filter { $0.front == front }) }
        let faults = PoolScenario.Fault.allCases
        results = faults.flatMap { fault in results.filter { $0.fault == fault } }
        print("")
        print("9. Three backends behind Varnish and behind nginx at \(Self.rate) requests/s, one of them faulted; \(rounds) faults of each kind, median / p99 per fault.")
        print("   The set-ups of one balancer run at the same time on the same host, each with its own backends, balancer and load; alone, the balancer leaves the server faulted.")
        print(Table(header: ["fault", "contender", "balancer's own checks", "failed or > 1 s", "of them failed", "fault → out of rotation (ms)", "vs Medic"], rows: results.map { result in
            let medic = results.first { $0.fault == result.fault && $0.setup.front == result.setup.front && $0.setup.medic }
            let ratio = result.setup.medic ? "" : medic.map { result.ratio(to: $0.affected) } ?? ""
            let affected = Spread(result.affected)
            let out = Spread(result.outOfRotation)?.milliseconds ?? (result.setup.front == .nginx && !result.setup.medic ? "not shown" : "never")
            return [result.fault.what, result.setup.name, result.setup.checks, affected?.counts ?? "", Spread(result.failed)?.counts ?? "", out, ratio]
        }).render())
        return results.flatMap { result in result.failures.map { "\(result.fault) behind \(result.setup.name): \($0)" } }
    }

    func run(_ setups: [Setup]) async throws -> [Result] {
        let host = try TestHost(name: "bench-front", binds: [Backend.packageRoot])
        defer { host.destroy() }
        let ports = setups.map { _ in (0..<3).map { _ in freePort() } }
        let frontPorts = setups.map { _ in freePort() }
        try installBackends(
            host, names: setups.indices.map { s in (0..<3).map { Self.backend(s, $0) } }, ports: ports, medic: setups.map(\.medic),
            heartbeats: "/run/medic-front/heartbeat.sock")
        // Balancers run beside the test host, as medicd does (it reaches the host over its bus).
        let varnishDirectory = { (s: Int) in host.directory + "/varnish-\(s)" }
        let nginxDirectory = { (s: Int) in host.directory + "/nginx-\(s)" }
        let playbooks = setups.indices.filter { setups[$0].medic }.map { s in
            poolPlaybook(
                units: ports[s].indices.map { (unit: Self.backend(s, $0) + ".service", port: ports[s][$0]) },
                pool: { index in
                    switch setups[s].front {
                    case .varnish:
                        "varnish: \(Self.varnishCLI(s)), secret: \(varnishDirectory(s))/secret, backend: app, server: web\(index + 1), min_in_service: 50%"
                    case .nginx:
                        "nginx: \(nginxDirectory(s))/app.servers, config: \(nginxDirectory(s))/nginx.conf, pid: \(nginxDirectory(s))/nginx.pid, backend: app, server: \"127.0.0.1:\(ports[s][index])\", min_in_service: 50%"
                    }
                },
                guards: #"{ rate: { restart: 10000 in 10m }, flap: 100000 in 5m, backoff: { initial: 10ms }, stabilise: 300ms, storm: "100% in 1m" }"#)
        }
        let medic = try RunningMedicd.start(medicd, on: host, playbooks: playbooks, runtime: host.directory + "/run/medic-front", metrics: false)
        defer { medic.stop() }

        var results = PoolScenario.Fault.allCases.flatMap { fault in setups.map { Result(setup: $0, fault: fault) } }
        var recoveries = 0
        for _ in 1...rounds {
            for fault in PoolScenario.Fault.allCases {
                // Alone, the faulted backend stays faulted: put it back, and give each balancer a fresh start.
                _ = try host.runInside(["systemctl", "restart"] + setups.indices.filter { !setups[$0].medic }.map { Self.backend($0, 0) + ".service" })
                let varnishes = try setups.indices.filter { setups[$0].front == .varnish }.map { s in
                    (s, try Varnish(
                        directory: varnishDirectory(s), backendPorts: ports[s], cli: Self.varnishCLI(s), port: frontPorts[s],
                        timeouts: ".connect_timeout = 1s; .first_byte_timeout = 2s;", retry: setups[s].retry))
                }
                defer { for (_, varnish) in varnishes { varnish.stop() } }
                let nginxes = try setups.indices.filter { setups[$0].front == .nginx }.map { s in
                    try Nginx(
                        directory: nginxDirectory(s), backendPorts: ports[s], port: frontPorts[s], server: "max_fails=1 fail_timeout=10s",
                        proxy: (setups[s].retry ? "proxy_next_upstream error timeout http_502 http_503 http_504; " : "") + "proxy_connect_timeout 1s; proxy_read_timeout 2s;")
                }
                defer { for nginx in nginxes { nginx.stop() } }
                for (_, varnish) in varnishes { try await varnish.ready() }
                for nginx in nginxes { try await nginx.ready() }
                for port in ports.joined() + frontPorts where waitUntilServing(port: port, timeout: .seconds(10)) == nil {
                    let owner = frontPorts.firstIndex(of: port).map { "\(setups[$0].name)'s balancer" }
                        ?? ports.firstIndex { $0.contains(port) }.map { "a backend of \(setups[$0].name)" } ?? "?"
                    // What Medic did about that backend, without the repeats of an incident already open.
                    let unit = ports.firstIndex { $0.contains(port) }.flatMap { s in ports[s].firstIndex(of: port).map { Self.backend(s, $0) + ".service" } }
                    let told = ((try? medic.records(unit: unit)) ?? []).filter { $0.kind != "observation" && !$0.message.hasPrefix("joined open incident") }
                        .suffix(20).map { "\($0.kind) \($0.target ?? ""): \($0.message)" }.joined(separator: "\n")
                    throw BenchFailure("port \(port) (\(owner)) did not serve after a restart\n\(told)")
                }
                let strike = ContinuousClock.now + .milliseconds(Int64.random(in: 2000...2500))
                let pids = try setups.indices.map { s in
                    guard let pid = host.processes(ofUnit: Self.backend(s, 0) + ".service").first else { throw BenchFailure("\(Self.backend(s, 0)) is not running") }
                    return pid
                }
                let runs = try await withThrowingTaskGroup(of: (Int, LoadResult, Double?).self) { group in
                    for (s, setup) in setups.enumerated() {
                        let pid = pids[s], statusFile = host.directory + "/run/\(Self.backend(s, 0)).status"
                        let varnish = varnishes.first { $0.0 == s }?.1
                        let upstreams = nginxDirectory(s) + "/app.servers"
                        // Varnish shows its backends' health; nginx shows nothing, only Medic's mark in its file.
                        let shown = varnish != nil || setup.medic
                        let inRotation: @Sendable () async -> Bool? = {
                            if let varnish { return (try? await varnish.backendHealth()["web1"]).map { $0 == "healthy" } }
                            return (try? String(contentsOfFile: upstreams, encoding: .utf8)).map { !$0.contains("down;") }
                        }
                        group.addTask {
                            var out: Double?
                            let load = try await LoadResult.run(port: frontPorts[s], rate: Self.rate, duration: .seconds(30), directory: host.directory, endsWithDuring: true) {
                                try await Task.sleep(until: strike)
                                let start = ContinuousClock.now
                                try PoolScenario.inject(fault, pid: pid, statusFile: statusFile)
                                if !shown { try await Task.sleep(for: .seconds(3)) }
                                if shown { out = await watchRotation(inRotation, from: start, untilBack: setup.medic) }
                                try await Task.sleep(for: .milliseconds(500))
                            }
                            return (s, load, out)
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                let first = PoolScenario.Fault.allCases.firstIndex(of: fault)! * setups.count
                for (s, load, out) in runs { results[first + s].add(load, out: out, shown: setups[s].medic || setups[s].front == .varnish) }
                recoveries += playbooks.count
                if !medic.waitForClosedIncidents(recoveries, outcome: "recovered") {
                    for s in setups.indices where setups[s].medic { results[first + s].failures.append("Medic did not recover web1 (\(medic.closedIncidents(outcome: "recovered")) of \(recoveries) incidents recovered)") }
                    recoveries = medic.closedIncidents(outcome: "recovered")
                }
            }
        }
        return results
    }

    static func backend(_ s: Int, _ i: Int) -> String { "front\(s)-app\(i + 1)" }
    /// Varnish's CLI for set-up `s`: the same address every round, so that Medic's playbook holds.
    static func varnishCLI(_ s: Int) -> String { "127.0.0.1:\(cliPorts[s])" }
    private static let cliPorts = setups.map { _ in freePort() }
}
