import Audit
import Foundation
import Glibc
import MedicCore
import TestHost

/// Scenario 10: a burst of crashes among many units. N of `total` idle units (`sleep infinity`,
/// one unit each, of a template) are killed at once with SIGKILL; "back" is the unit active
/// again, to the microsecond by systemd's own ActiveEnterTimestampMonotonic against the moment
/// its process was killed. Contenders: systemd's own `Restart=always` (its default
/// RestartSec=100ms) and medicd from units/medic.service as shipped, watching every unit with
/// `crashed → restart` and its default guards (the storm guard holds a playbook whose targets
/// fail together past 30%: what it restarted, held and escalated is reported, and whether
/// systemd's watchdog of medicd ever fired).
struct BurstScenario {
    let medicd: String
    let total: Int
    let bursts: [Int]

    struct Result {
        var contender: String
        var killed: Int
        /// Kill → active again, per unit back within the wait.
        var back: [Double]
        /// When each unit was killed, wall µs.
        var killedAt: [String: Int64] = [:]
        var restarts = 0
        var held = 0
        var escalations = 0
        var watchdogFired = false
        /// For medicd, per unit: kill → observed, observed → restart asked, asked → done (ms).
        var phases: [(observed: Double, asked: Double, done: Double)] = []
    }

    func report() throws -> [String] {
        let results = try run()
        print("")
        print("10. A burst of crashes: N of \(total) idle units killed at once (SIGKILL); kill → active again by systemd's own timestamps:")
        print(Table(header: ["contender", "killed", "back", "median", "p99", "max", "restarted / held / escalated by Medic", "medicd's watchdog"], rows: results.map { result in
            let sorted = result.back.sorted()
            func at(_ q: Double) -> String {
                sorted.isEmpty ? "-" : String(format: "%.0f ms", sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * q).rounded()))])
            }
            let medic = result.contender == "medicd"
            return [result.contender, "\(result.killed) of \(total)", "\(sorted.count)", at(0.5), at(0.99), at(1),
                    medic ? "\(result.restarts) / \(result.held) / \(result.escalations)" : "", medic ? (result.watchdogFired ? "FIRED" : "did not fire") : ""]
        }).render())
        for result in results where !result.phases.isEmpty {
            // Below 10 ms with a decimal: the engine's decision takes well under one.
            func ms(_ value: Double) -> String { String(format: value < 10 ? "%.1f" : "%.0f", value) }
            func spread(_ values: [Double]) -> String {
                let sorted = values.sorted()
                return "\(ms(sorted[sorted.count / 2])) / \(ms(sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * 0.99).rounded()))])) ms"
            }
            print("    medicd, \(result.killed) killed, median / p99: kill → crash recorded \(spread(result.phases.map(\.observed))), "
                + "→ restart asked \(spread(result.phases.map(\.asked))), → restart done \(spread(result.phases.map(\.done)))")
        }
        var failures: [String] = []
        for result in results where result.watchdogFired { failures.append("systemd's watchdog fired on medicd during a burst of \(result.killed)") }
        for result in results where result.contender == "systemd" && result.back.count < result.killed {
            failures.append("systemd brought back \(result.back.count) of \(result.killed) units")
        }
        for result in results where result.contender == "medicd" && result.back.count + result.held < result.killed {
            failures.append("medicd brought back \(result.back.count) and held \(result.held) of \(result.killed) units")
        }
        return failures
    }

    func run() throws -> [Result] {
        let host = try TestHost(name: "bench-burst", binds: [Backend.packageRoot])
        defer { host.destroy() }
        let bench = host.directory + "/run/bench"
        try FileManager.default.createDirectory(atPath: bench + "/playbooks", withIntermediateDirectories: true)
        let units = (1...total).map { "burst@\($0).service" }
        try host.installUnit("burst@.service", "[Unit]\nDescription=An idle service %i\n[Service]\nExecStart=/bin/sleep infinity\n")
        try host.installMedicUnit(medicd: medicd)
        try """
            playbook: burst
            targets:
              - unit: burst@*.service
            on:
              - when: crashed
                do: [ restart ]
            """.write(toFile: bench + "/playbooks/burst.yaml", atomically: true, encoding: .utf8)
        try host.runInside(["systemctl", "daemon-reload"])
        // systemd starts units at about 20 a second here; in slices of 500 per call.
        for slice in stride(from: 0, to: units.count, by: 500) {
            try host.runInside(["systemctl", "start"] + units[slice..<min(units.count, slice + 500)])
        }
        var results: [Result] = []
        for killed in bursts {
            try setRestart("always", on: host)
            results.append(try burst(killed, of: units, on: host, contender: "systemd"))
            try setRestart("no", on: host)
            try host.runInside(["systemctl", "start", "medic.service"])
            var result = try burst(killed, of: units, on: host, contender: "medicd")
            let audit = try AuditStore(stateDirectory: bench + "/medic-state", readOnly: true)
            let records = try audit.records(AuditQuery(kinds: [.observation, .stepIntent, .stepResult, .guardStopped, .escalation]))
            result.phases = Self.phases(records, killedAt: result.killedAt)
            result.restarts = records.filter { $0.kind == AuditRecord.Kind.stepIntent.rawValue && $0.step == "restart" }.count
            result.held = Set(records.filter { $0.kind == AuditRecord.Kind.guardStopped.rawValue }.compactMap(\.target)).count
            result.escalations = records.filter { $0.kind == AuditRecord.Kind.escalation.rawValue }.count
            let medic = try host.runInside(["systemctl", "show", "-P", "NRestarts", "medic.service"]).trimmingCharacters(in: .whitespacesAndNewlines)
            let journal = (try? host.runInside(["journalctl", "--no-pager", "-u", "medic.service"])) ?? ""
            result.watchdogFired = medic != "0" || journal.contains("Watchdog timeout")
            results.append(result)
            try host.runInside(["systemctl", "stop", "medic.service"])
            try FileManager.default.removeItem(atPath: bench + "/medic-state")
            // What medicd held is started again for the next burst.
            try host.runInside(["systemctl", "start"] + units)
        }
        return results
    }

    /// Per restarted unit: kill → its crash recorded, → the restart asked, → the restart done.
    private static func phases(_ records: [StoredRecord], killedAt: [String: Int64]) -> [(observed: Double, asked: Double, done: Double)] {
        killedAt.compactMap { unit, killed in
            let mine = records.filter { $0.target == unit && $0.wallMicroseconds >= killed }
            guard let observed = mine.first(where: { $0.kind == AuditRecord.Kind.observation.rawValue })?.wallMicroseconds,
                  let asked = mine.first(where: { $0.kind == AuditRecord.Kind.stepIntent.rawValue && $0.step == "restart" })?.wallMicroseconds,
                  let done = mine.first(where: { $0.kind == AuditRecord.Kind.stepResult.rawValue && $0.step == "restart" })?.wallMicroseconds
            else { return nil }
            return (Double(observed - killed) / 1000, Double(asked - observed) / 1000, Double(done - asked) / 1000)
        }
    }

    private func setRestart(_ policy: String, on host: TestHost) throws {
        try host.installUnit("burst@.service.d/restart.conf", "[Service]\nRestart=\(policy)\n")
        try host.runInside(["systemctl", "daemon-reload"])
    }

    /// Kills `count` units spread over all of them, and waits for them to come back (up to 60 s,
    /// or 10 s without any coming back).
    private func burst(_ count: Int, of units: [String], on host: TestHost, contender: String) throws -> Result {
        let victims = stride(from: 0, to: units.count, by: max(1, units.count / count)).prefix(count).map { units[$0] }
        let pids = victims.map { (unit: $0, pid: host.processes(ofUnit: $0).first) }
        var killedAt: [String: Int64] = [:]
        for (unit, pid) in pids {
            guard let pid else { throw BenchFailure("\(unit) is not running before the burst") }
            killedAt[unit] = Self.monotonicMicroseconds()
            kill(pid, SIGKILL)
        }

        var back: [String: Double] = [:]
        let deadline = ContinuousClock.now + .seconds(60)
        var lastProgress = ContinuousClock.now
        while back.count < victims.count, ContinuousClock.now < deadline, ContinuousClock.now - lastProgress < .seconds(10) {
            Thread.sleep(forTimeInterval: 0.5)
            let waiting = victims.filter { back[$0] == nil }
            let entered = try activeEntered(waiting, on: host)
            for unit in waiting {
                guard let at = entered[unit], let killed = killedAt[unit], at > killed else { continue }
                back[unit] = Double(at - killed) / 1000
                lastProgress = .now
            }
        }
        return Result(contender: contender, killed: count, back: Array(back.values), killedAt: killedAt.mapValues(monotonicToWall))
    }

    /// Each unit's ActiveEnterTimestampMonotonic, if it is active now.
    private func activeEntered(_ units: [String], on host: TestHost) throws -> [String: Int64] {
        var entered: [String: Int64] = [:]
        for slice in stride(from: 0, to: units.count, by: 500) {
            let text = try host.runInside(["systemctl", "show", "-p", "Id", "-p", "ActiveState", "-p", "ActiveEnterTimestampMonotonic"]
                + units[slice..<min(units.count, slice + 500)])
            for block in text.components(separatedBy: "\n\n") {
                var fields: [String: String] = [:]
                for line in block.split(separator: "\n") {
                    let pair = line.split(separator: "=", maxSplits: 1)
                    if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
                }
                if let id = fields["Id"], fields["ActiveState"] == "active", let at = fields["ActiveEnterTimestampMonotonic"].flatMap({ Int64($0) }) {
                    entered[id] = at
                }
            }
        }
        return entered
    }

    /// CLOCK_MONOTONIC, which systemd's *Monotonic timestamps count.
    private static func monotonicMicroseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
    }
}
