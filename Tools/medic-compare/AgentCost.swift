import Foundation
import Glibc
import Posix
import TestHost

/// Scenario 5: what each agent costs while it watches N idle services, side by side on one test
/// host, each run as a systemd unit (medicd from units/medic.service as shipped). Each service is
/// a `sleep infinity` with a memory limit in every agent's terms: a medicd playbook target
/// (`crashed or memory > 1GiB for 1m`) and a monit `check process … with pidfile` (`if totalmem
/// > 1 GB then restart`), both looked at every 5 s (medicd's default sampling; monit `set daemon
/// 5`). supervisord cannot watch systemd units: it runs N `sleep infinity` programs of its own.
/// CPU is the agent's unit's cgroup `usage_usec` (every thread, to the microsecond) over the idle
/// window; memory is its main process's resident set.
struct AgentCost {
    let medicd: String
    let unitCounts: [Int]
    /// How long the idle cost is averaged over.
    let idle: Duration

    struct Result {
        var agent: String
        var units: Int
        /// From exec to ready (READY=1 for medicd), where the agent says.
        var startup: Duration?
        var residentMiB: Double
        /// Resident memory with shared pages counted as this process's share.
        var proportionalMiB: Double?
        var anonymousMiB: Double
        /// Share of one core, 0…1.
        var cpuShare: Double
    }

    static let interval = 5

    /// Runs the scenario and prints its table.
    func report() throws {
        let results = try run()
        print("")
        print("5. Each agent's cost watching N idle services, all three side by side as units of one test host; each service a `sleep infinity` with a memory limit,")
        print("   looked at every \(Self.interval) s (medicd's default sampling, monit `set daemon \(Self.interval)`); supervisord runs N programs of its own. Idle CPU over \(Int(idle.seconds)) s:")
        print(Table(header: ["services", "agent", "exec → READY=1", "resident memory", "PSS", "of it anonymous", "CPU (share of one core)"], rows: results.map {
            [String($0.units), $0.agent, $0.startup.map { String(format: "%.0f ms", $0.milliseconds) } ?? "", String(format: "%.1f MiB", $0.residentMiB),
             $0.proportionalMiB.map { String(format: "%.1f MiB", $0) } ?? "", String(format: "%.1f MiB", $0.anonymousMiB), String(format: "%.3f%%", $0.cpuShare * 100)]
        }).render())
    }

    func run() throws -> [Result] {
        let host = try TestHost(name: "bench-agent", binds: [Backend.packageRoot])
        defer { host.destroy() }
        let bench = host.directory + "/run/bench"
        try FileManager.default.createDirectory(atPath: bench, withIntermediateDirectories: true)
        try host.installUnit("idle@.service", """
            [Unit]
            Description=An idle service %i
            [Service]
            ExecStart=/bin/sh -c 'echo $$$$ > /run/bench/idle-%i.pid && exec /bin/sleep infinity'
            """)
        try host.installMedicUnit(medicd: medicd)
        try host.installUnit("monit.service", "[Service]\nExecStart=/usr/bin/monit -I -c /run/bench/monitrc\n")
        try host.installUnit("supervisor.service", "[Service]\nExecStart=/usr/bin/supervisord -n -c /run/bench/supervisord.conf\n")
        try host.runInside(["systemctl", "daemon-reload"])
        var results: [Result] = []
        var started = 0
        for count in unitCounts.sorted() {
            if count > started {
                try host.runInside(["systemctl", "start"] + (started + 1...count).map { "idle@\($0).service" })
                started = count
            }
            try configure(bench, units: count)
            results += try measure(on: host, units: count)
        }
        return results
    }

    /// Writes every agent's configuration for `units` services.
    private func configure(_ bench: String, units: Int) throws {
        let range = 1...units
        try FileManager.default.createDirectory(atPath: bench + "/playbooks", withIntermediateDirectories: true)
        try """
            playbook: idle
            targets:
            \(range.map { "  - unit: idle@\($0).service" }.joined(separator: "\n"))
            on:
              - when: crashed or memory > 1GiB for 1m
                do: [ restart ]
            """.write(toFile: bench + "/playbooks/idle.yaml", atomically: true, encoding: .utf8)
        try ("""
            set daemon \(Self.interval)
            set logfile /run/bench/monit.log
            set idfile /run/bench/monit.id
            set statefile /run/bench/monit.state

            """ + range.map { """
            check process idle\($0) with pidfile /run/bench/idle-\($0).pid
              start program = "/bin/systemctl start idle@\($0).service"
              stop program = "/bin/systemctl stop idle@\($0).service"
              if totalmem > 1 GB then restart

            """ }.joined()).write(toFile: bench + "/monitrc", atomically: true, encoding: .utf8)
        chmod(bench + "/monitrc", 0o600)
        try ("""
            [supervisord]
            nodaemon=true
            logfile=/run/bench/supervisord.log
            pidfile=/run/bench/supervisord.pid

            """ + range.map { "[program:idle\($0)]\ncommand=/bin/sleep infinity\nautorestart=true\n" }.joined(separator: "\n"))
            .write(toFile: bench + "/supervisord.conf", atomically: true, encoding: .utf8)
    }

    private func measure(on host: TestHost, units: Int) throws -> [Result] {
        // Above 1,000 services medicd runs alone: monit and supervisord are not meant for it.
        let agents = [("medicd", "medic.service"), ("monit", "monit.service"), ("supervisord", "supervisor.service")]
            .filter { units <= 1000 || $0.0 == "medicd" }
        do {
            try host.runInside(["systemctl", "start"] + agents.map(\.1))
        } catch {
            let journal = (try? host.runInside(["journalctl", "--no-pager", "-n", "40", "-u", "medic.service"])) ?? ""
            throw BenchFailure("\(error)\n\(journal)")
        }
        defer { _ = try? host.runInside(["systemctl", "stop"] + agents.map(\.1)) }
        // supervisord is idle once it has started its programs.
        let deadline = ContinuousClock.now + .seconds(60)
        while agents.count > 1, host.processes(ofUnit: "supervisor.service").count <= units, ContinuousClock.now < deadline { usleep(50_000) }
        // Let start-up work settle (medicd's ends with its first heap release, 10–20 s after
        // READY=1: it logs so, unless journald's rate limit dropped the line, as it may with
        // 10,000 services starting), then average over whole rounds of every agent.
        let settled = ContinuousClock.now + .seconds(21)
        while !medicdSettled(host), ContinuousClock.now < settled { usleep(200_000) }
        Thread.sleep(forTimeInterval: 2)
        let before = try agents.map { try cpuMicroseconds(host, unit: $0.1) }
        let idleStart = ContinuousClock.now
        Thread.sleep(forTimeInterval: idle.seconds)
        let after = try agents.map { try cpuMicroseconds(host, unit: $0.1) }
        let wall = (ContinuousClock.now - idleStart).seconds
        // Idle means every agent found every service well.
        let monitLog = (try? String(contentsOfFile: host.directory + "/run/bench/monit.log", encoding: .utf8)) ?? ""
        if let error = monitLog.split(separator: "\n").first(where: { $0.contains("error") }) {
            throw BenchFailure("monit found a service in trouble with \(units) services: \(error)")
        }
        return try agents.enumerated().map { index, agent in
            guard let pid = try mainPID(host, unit: agent.1), let cost = ProcessCost(pid: pid) else {
                throw BenchFailure("\(agent.0) is not running with \(units) services:\n" + ((try? host.runInside(["systemctl", "status", agent.1])) ?? ""))
            }
            return Result(
                agent: agent.0, units: units, startup: agent.0 == "medicd" ? try readyAfter(host, unit: agent.1) : nil,
                residentMiB: cost.residentMiB, proportionalMiB: cost.proportionalMiB, anonymousMiB: cost.anonymousMiB, cpuShare: Double(after[index] - before[index]) / 1e6 / wall)
        }
    }

    /// Whether the running medicd (not one of an earlier count of services) logged the end of
    /// its start-up's work (`start-up settled`).
    private func medicdSettled(_ host: TestHost) -> Bool {
        guard let invocation = try? host.runInside(["systemctl", "show", "-P", "InvocationID", "medic.service"])
            .trimmingCharacters(in: .whitespacesAndNewlines), !invocation.isEmpty else { return false }
        let lines = (try? host.runInside(["journalctl", "--no-pager", "-q", "_SYSTEMD_INVOCATION_ID=" + invocation, "-g", RunningMedicd.settledLine])) ?? ""
        return !lines.isEmpty
    }

    /// The unit's CPU time so far, every process and thread of it (cgroup2 cpu.stat).
    private func cpuMicroseconds(_ host: TestHost, unit: String) throws -> Int64 {
        let path = host.cgroupDirectory + "/system.slice/\(unit)/cpu.stat"
        let text = WholeFile.text(path) ?? ""
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("usage_usec ") }), let usec = Int64(line.dropFirst(11)) else {
            throw BenchFailure("no CPU figure for \(unit) in \(path)")
        }
        return usec
    }

    /// The unit's main process, as this machine numbers it.
    private func mainPID(_ host: TestHost, unit: String) throws -> pid_t? {
        let inner = try host.runInside(["systemctl", "show", "-P", "MainPID", unit]).trimmingCharacters(in: .whitespacesAndNewlines)
        return host.processes(ofUnit: unit).first { pid in
            let status = WholeFile.text("/proc/\(pid)/status") ?? ""
            return status.split(separator: "\n").first { $0.hasPrefix("NSpid:") }?.split(separator: "\t").last.map(String.init) == inner
        }
    }

    /// From exec to the unit becoming active: for a Type=notify unit, its READY=1.
    private func readyAfter(_ host: TestHost, unit: String) throws -> Duration {
        let text = try host.runInside(["systemctl", "show", "-p", "ExecMainStartTimestampMonotonic", "-p", "ActiveEnterTimestampMonotonic", unit])
        var values: [String: Int64] = [:]
        for line in text.split(separator: "\n") {
            let pair = line.split(separator: "=", maxSplits: 1)
            if pair.count == 2 { values[String(pair[0])] = Int64(pair[1]) }
        }
        guard let exec = values["ExecMainStartTimestampMonotonic"], let ready = values["ActiveEnterTimestampMonotonic"] else {
            throw BenchFailure("no start-up times for \(unit): \(text)")
        }
        return .microseconds(ready - exec)
    }
}

/// A contender did not do its job, or the bench could not be set up: the run fails.
struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Double { seconds * 1000 }
}
