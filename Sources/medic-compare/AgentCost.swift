import Foundation
import Glibc
import TestHost

/// Scenario: what medicd costs while it watches N idle units at the default sampling interval,
/// and how long it takes from exec to READY=1 with them. Each unit is a real systemd unit in a
/// test host (a `sleep infinity`), each a playbook target with a memory limit, so medicd both
/// follows its bus signals and samples its cgroup every interval.
struct AgentCost {
    let medicd: String
    let unitCounts: [Int]
    /// How long the idle cost is averaged over.
    let idle: Duration

    struct Result {
        var units: Int
        var startup: Duration
        var residentMiB: Double
        var anonymousMiB: Double
        /// Share of one core, 0…1.
        var cpuShare: Double
    }

    func run() throws -> [Result] {
        let host = try TestHost(name: "bench-agent", binds: [Backend.packageRoot])
        defer { host.destroy() }
        try host.installUnit("idle@.service", """
            [Unit]
            Description=An idle service %i
            [Service]
            ExecStart=/bin/sleep infinity
            """)
        try host.runInside(["systemctl", "daemon-reload"])
        var results: [Result] = []
        var started = 0
        for count in unitCounts.sorted() {
            if count > started {
                try host.runInside(["systemctl", "start"] + (started + 1...count).map { "idle@\($0).service" })
                started = count
            }
            results.append(try measure(on: host, units: count))
        }
        return results
    }

    private func measure(on host: TestHost, units: Int) throws -> Result {
        let targets = (1...units).map { "  - unit: idle@\($0).service" }.joined(separator: "\n")
        let work = host.directory + "/medicd-\(units)"
        let medic = try MedicdProcess(medicd: medicd, host: host, work: work, runtime: work + "/run", playbook: """
            playbook: idle
            targets:
            \(targets)
            on:
              - when: crashed or memory > 1GiB for 1m
                do: [ restart ]
            """, arguments: ["--cgroup-root", host.cgroupDirectory])
        defer { medic.stop() }
        // Let start-up work settle, then average over whole sampling rounds.
        Thread.sleep(forTimeInterval: 2)
        let pid = medic.process.pid
        guard let before = ProcessCost(pid: pid) else { throw BenchFailure("medicd exited:\n\(medic.process.output.suffix(2000))") }
        let idleStart = ContinuousClock.now
        Thread.sleep(forTimeInterval: idle.seconds)
        guard let after = ProcessCost(pid: pid) else { throw BenchFailure("medicd exited:\n\(medic.process.output.suffix(2000))") }
        let wall = (ContinuousClock.now - idleStart).seconds
        return Result(
            units: units, startup: medic.startup, residentMiB: after.residentMiB, anonymousMiB: after.anonymousMiB,
            cpuShare: (after.cpuSeconds - before.cpuSeconds) / wall)
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
