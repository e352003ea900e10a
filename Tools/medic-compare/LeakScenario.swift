import Audit
import Foundation
import Glibc
import Posix
import TestHost

/// Scenario 4: a backend leaks memory steadily; how long from its memory crossing the limit until
/// a fresh backend serves again. Each contender looks after its own leaking backend on one test
/// host, all at once; every restarted backend leaks again, so the rounds follow one another. Each
/// backend starts leaking after a random 0–1 s, or the crossings would keep step with a 1 s cycle.
struct LeakScenario {
    let medicd: String
    let rounds: Int
    static let limitMiB = 64
    static let leakMiBPerSecond = 20

    /// One contender's figures: milliseconds from the crossing to serving again, per round.
    struct Result {
        var contender: String
        var settings: String
        var remedied: [Double] = []
        var failures: [String] = []
    }

    private struct Contender {
        let name: String
        let settings: String
        let unit: String
        let port: Int
    }

    /// Runs the scenario and prints its table; returns what failed.
    func report() throws -> [String] {
        let results = try run()
        print("")
        print("4. A backend leaking \(Self.leakMiBPerSecond) MiB/s, limit \(Self.limitMiB) MiB; \(rounds) leaks each, milliseconds from its memory crossing the limit to a new backend serving, median / p99:")
        let medic = results.first { $0.contender == "Medic" }.flatMap { Spread($0.remedied) }
        print(Table(header: ["contender", "settings", "limit → serving again", "vs Medic"], rows: results.map { result in
            let spread = Spread(result.remedied)
            return [result.contender, result.settings, spread?.milliseconds ?? "never", result.contender == "Medic" ? "" : Spread.ratio(spread, to: medic)]
        }).render())
        if !results.contains(where: { $0.contender == "systemd" }) {
            print("systemd's MemoryMax= is not measured: this machine's test hosts have no memory controller in their cgroup2.")
        }
        print("supervisord has no memory check of its own (superlance's memmon is not packaged in Debian).")
        return results.flatMap { result in result.failures.map { "memory leak: \(result.contender): \($0)" } }
    }

    func run() throws -> [Result] {
        let host = try TestHost(name: "bench-leak", binds: [Backend.packageRoot])
        defer { host.destroy() }
        let bench = host.directory + "/run/bench"
        try FileManager.default.createDirectory(atPath: bench, withIntermediateDirectories: true)
        let backend = try Backend.path()
        let limit = Self.limitMiB
        var contenders = [
            Contender(name: "Medic", settings: "memory > \(limit)MiB → restart; sampled every 1 s", unit: "leak-medic.service", port: freePort()),
            Contender(name: "monit", settings: "set daemon 1; if totalmem > \(limit) MB then restart", unit: "leak-monit.service", port: freePort()),
        ]
        // systemd's MemoryMax= needs the memory controller in the host's cgroup2.
        if Self.hasMemoryController(host) {
            contenders.append(Contender(
                name: "systemd", settings: "MemoryMax=\(limit)M (the kernel's OOM kill), Restart=always, RestartSec=0", unit: "leak-systemd.service", port: freePort()))
        }
        for contender in contenders {
            try host.installUnit(contender.unit, """
                [Unit]
                StartLimitIntervalSec=0
                [Service]
                ExecStart=\(backend) --port \(contender.port) --name backend-\(contender.port) --leak-mb-per-s \(Self.leakMiBPerSecond) --leak-jitter-ms 1000
                LimitCORE=0
                \(contender.name == "systemd" ? "MemoryMax=\(limit)M\nMemorySwapMax=0\nRestart=always\nRestartSec=0" : "")
                """)
        }
        let monit = contenders[1]
        try """
            set daemon 1
            set logfile /run/bench/monit.log
            set idfile /run/bench/monit.id
            set statefile /run/bench/monit.state
            check process web matching "backend-\(monit.port)"
              start program = "/bin/systemctl start \(monit.unit)"
              stop program = "/bin/systemctl stop \(monit.unit)"
              if totalmem > \(limit) MB then restart
            """.write(toFile: bench + "/monitrc", atomically: true, encoding: .utf8)
        chmod(bench + "/monitrc", 0o600)
        try host.installUnit("monit-bench.service", "[Service]\nExecStart=/usr/bin/monit -I -c /run/bench/monitrc\n")
        try host.runInside(["systemctl", "daemon-reload"])
        let medic = try RunningMedicd.start(medicd, on: host, playbooks: ["""
            playbook: leak
            targets: [ { unit: \(contenders[0].unit) } ]
            guards: { rate: { restart: 10000 in 10m }, flap: 100000 in 5m, backoff: { initial: 10ms }, stabilise: 100ms }
            on:
              - when: memory > \(limit)MiB
                do: [ restart ]
            """], runtime: host.directory + "/run/medic-bench", metrics: false, arguments: ["--cgroup-root", host.cgroupDirectory, "--sample-interval", "1s"])
        defer { medic.stop() }
        try host.runInside(["systemctl", "start", "monit-bench.service"] + contenders.map(\.unit))

        // Side by side, each in its own thread: the leak takes seconds a round.
        let threads = contenders.map { contender in ResultThread { measure(contender, on: host) } }
        var results = threads.map { $0.result() }
        // One restart per leak (the last may come after the count ended), no more.
        let restarts = ((try? medic.audit.records(AuditQuery(kinds: [.stepResult]))) ?? []).filter { $0.step == "restart" }.count
        if restarts > rounds + 1 { results[0].failures.append("restarted \(restarts) times for \(rounds) leaks") }
        return results
    }

    /// Follows one contender's backend through `rounds` leaks: polls its cgroup's memory.current
    /// every 2 ms for the crossing (or the backend's death, where the kernel kills it at the
    /// limit), then every millisecond for a new backend that serves.
    private func measure(_ contender: Contender, on host: TestHost) -> Result {
        var result = Result(contender: contender.name, settings: contender.settings)
        let memory = host.cgroupDirectory + "/system.slice/\(contender.unit)/memory.current"
        let limitBytes = Double(Self.limitMiB) * 1_048_576
        var previous: pid_t?
        var crossed: Int64?
        for round in 0...rounds {
            guard let (pid, served) = freshBackend(contender, on: host, not: previous) else {
                result.failures.append("no new backend served within 10 s of the limit (round \(round))")
                break
            }
            if let crossed { result.remedied.append(Double(served - crossed) / 1000) }
            guard round < rounds else { break }
            previous = pid
            crossed = nil
            let deadline = ContinuousClock.now + .seconds(30)
            while crossed == nil, ContinuousClock.now < deadline {
                let processes = host.processes(ofUnit: contender.unit)
                if Self.memoryBytes(memoryCurrent: memory, processes: processes) >= limitBytes || !processes.contains(pid) {
                    crossed = wallMicroseconds()
                }
                usleep(2000)
            }
            if crossed == nil {
                result.failures.append("the backend never reached the limit (round \(round))")
                break
            }
        }
        return result
    }

    /// A unit's memory as its cgroup counts it (memory.current), or, where the cgroup has no
    /// memory controller, its processes' resident memory (as medicd and monit then count it).
    static func memoryBytes(memoryCurrent: String, processes: [pid_t]) -> Double {
        if let text = WholeFile.text(memoryCurrent), let bytes = Double(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            return bytes
        }
        return processes.compactMap { ProcessCost(pid: $0)?.residentMiB }.reduce(0, +) * 1_048_576
    }

    static func hasMemoryController(_ host: TestHost) -> Bool {
        (WholeFile.text(host.cgroupDirectory + "/cgroup.controllers") ?? "").split(separator: " ").contains { $0.trimmingCharacters(in: .whitespacesAndNewlines) == "memory" }
    }

    /// The unit's backend once it is a process other than `previous` and serves, and when it
    /// first did (wall µs); nil after 10 s.
    private func freshBackend(_ contender: Contender, on host: TestHost, not previous: pid_t?) -> (pid_t, Int64)? {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let pid = host.processes(ofUnit: contender.unit).first, pid != previous, serving(port: contender.port) {
                return (pid, wallMicroseconds())
            }
            usleep(1000)
        }
        return nil
    }
}

/// Runs `body` on a thread of its own (the contenders' polling loops block); `result()` waits
/// for it.
final class ResultThread<Value>: @unchecked Sendable {
    private var value: Value?
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () -> Value) {
        Thread.detachNewThread {
            self.value = body()
            self.done.signal()
        }
    }

    func result() -> Value {
        done.wait()
        return value!
    }
}
