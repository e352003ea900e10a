import Audit
import Foundation
import Glibc
import MedicCore
import TestHost

/// Scenario 7: the guards that keep a remedy from making an outage worse, under the two faults
/// that used to turn one failure into many: a database with three applications that
/// `Requires=` it (each in its own playbook, depending on it) killed, and 3 of 10 units of one
/// glob killed at once (storm: more than 30% in 3 s; the rounds wait it out). For each: how many
/// restarts Medic ran, how many units a guard held, and the time from the fault until every
/// backend serves again.
struct GuardScenario {
    let medicd: String
    let rounds: Int
    /// The glob playbook's storm window, waited out between rounds.
    static let stormWindow: Duration = .seconds(3)

    struct Result {
        var name: String
        var restarts: [Double] = []
        /// Units that were not killed but whose processes were replaced all the same.
        var spread: [Double] = []
        var held: [Double] = []
        /// Which guards held a step, and how often.
        var guards: [String: Int] = [:]
        var serving: [Double] = []
        var failures: [String] = []
    }

    func report() throws -> [String] {
        let results = try run()
        print("")
        print("7. Outages that must not spread, \(rounds) rounds each (median / p99):")
        print(Table(header: ["fault", "restarts by Medic", "other units taken down", "units held by a guard", "guards that held", "fault → all serving again (ms)"], rows: results.map {
            [$0.name, Spread($0.restarts)?.counts ?? "-", Spread($0.spread)?.counts ?? "-", Spread($0.held)?.counts ?? "-",
             $0.guards.isEmpty ? "none" : $0.guards.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "),
             Spread($0.serving)?.milliseconds ?? "never"]
        }).render())
        return results.flatMap(\.failures)
    }

    private func run() throws -> [Result] {
        let host = try TestHost(name: "bench-guards", binds: [Backend.packageRoot])
        defer { host.destroy() }
        let backend = try Backend.path()
        let db = freePort()
        let apps = (1...3).map { (unit: "app\($0).service", port: freePort()) }
        let globs = (1...10).map { _ in freePort() }
        try host.installUnit("db.service", "[Service]\nExecStart=\(backend) --port \(db) --name db\n")
        for app in apps {
            try host.installUnit(app.unit, "[Unit]\nRequires=db.service\nAfter=db.service\n[Service]\nExecStart=\(backend) --port \(app.port)\n")
        }
        try host.installUnit("acc@.service", "[Service]\nExecStart=\(backend) --port %i\n")
        try host.runInside(["systemctl", "daemon-reload"])
        try host.runInside(["systemctl", "start"] + apps.map(\.unit) + globs.map { "acc@\($0).service" })
        let probe = { (port: Int) in #"probe: { http: "http://127.0.0.1:\#(port)/health", every: 200ms, timeout: 150ms, failures: 2 }"# }
        let plan = "on:\n  - when: crashed or unhealthy\n    do: [ restart, { verify: { healthy: within 10s } } ]\n"
        // Every round kills the db again: a rate limit that allows a restart a round, and no flapping.
        let guards = "guards: { stabilise: 500ms, backoff: { initial: 100ms }, rate: { restart: 10 in 10m }, flap: 100 in 5m }\n"
        let dbBook = "playbook: db\ntargets:\n  - unit: db.service\n    \(probe(db))\n" + guards + plan
        let appBooks = apps.map { app in
            "playbook: \(app.unit.dropLast(8))\ntargets:\n  - unit: \(app.unit)\n    depends_on: [db.service]\n    \(probe(app.port))\n" + guards + plan
        }
        // The storm window is short so that the rounds do not add up to a storm (they wait it out).
        // The victims are drawn at random, so one unit can be killed in every round: a rate limit
        // that allows a restart a round (the default, 3 in 10 minutes, stops the fourth).
        let accBook = "playbook: acc\ntargets:\n  - unit: \"acc@*.service\"\nguards: { stabilise: 500ms, rate: { restart: 10 in 10m }, storm: 30% in \(Int(Self.stormWindow.seconds))s }\n"
            + "on:\n  - when: crashed\n    do: [ restart, { verify: { healthy: within 10s } } ]\n"
        let medic = try RunningMedicd.start(
            medicd, on: host, playbooks: [dbBook] + appBooks + [accBook], runtime: host.directory + "/run/medic-bench", metrics: false)
        defer { medic.stop() }
        let ports = [db] + apps.map(\.port)
        var dependency = Result(name: "db killed, 3 apps Requires= it (own playbooks, depends_on)")
        var storm = Result(name: "3 of 10 units of acc@*.service killed at once")
        for round in 0..<rounds {
            usleep(UInt32.random(in: 200_000...700_000))
            measure(&dependency, round: round, medic: medic, host: host, kill: ["db.service"], units: ["db.service"] + apps.map(\.unit), ports: ports, expectedRestarts: 1)
            let victims = globs.shuffled().prefix(3).map { "acc@\($0).service" }
            usleep(UInt32(Self.stormWindow.seconds * 1_000_000) + UInt32.random(in: 200_000...700_000))
            measure(&storm, round: round, medic: medic, host: host, kill: victims, units: globs.map { "acc@\($0).service" }, ports: globs, expectedRestarts: 3)
        }
        return [dependency, storm]
    }

    /// Kills the main process of each unit of `kill` at once and records what Medic did until
    /// every backend on `ports` serves and its incidents have closed, and which other of `units`
    /// lost their processes meanwhile.
    private func measure(
        _ result: inout Result, round: Int, medic: RunningMedicd, host: TestHost, kill victims: [String], units: [String], ports: [Int], expectedRestarts: Int
    ) {
        let before = (try? medic.audit.records(AuditQuery()).last?.seq) ?? 0
        let closed = medic.closedIncidents()
        let processes = Dictionary(uniqueKeysWithValues: units.map { ($0, Set(host.processes(ofUnit: $0))) })
        let fault = wallMicroseconds()
        for unit in victims { for pid in host.processes(ofUnit: unit) { Glibc.kill(pid, SIGKILL) } }
        usleep(50_000)
        var last = fault
        for port in ports {
            guard let back = waitUntilServing(port: port, timeout: .seconds(15)) else {
                result.failures.append("\(result.name), round \(round + 1): port \(port) did not serve again within 15 s")
                return
            }
            last = max(last, back)
        }
        result.serving.append(Double(last - fault) / 1000)
        medic.waitForClosedIncidents(closed + victims.count)
        usleep(300_000)
        let others = units.filter { !victims.contains($0) && !processes[$0, default: []].isSubset(of: Set(host.processes(ofUnit: $0))) }
        result.spread.append(Double(others.count))
        let records = ((try? medic.audit.records(AuditQuery())) ?? []).filter { ($0.seq ?? 0) > before }
        let restarts = records.filter { $0.kind == AuditRecord.Kind.stepIntent.rawValue && $0.step == "restart" }.count
        let stops = records.filter { $0.kind == AuditRecord.Kind.guardStopped.rawValue }
        let held = Set(stops.compactMap(\.target)).count
        for stop in stops { result.guards[stop.facts[.guardName] ?? "?", default: 0] += 1 }
        result.restarts.append(Double(restarts))
        result.held.append(Double(held))
        if restarts != expectedRestarts {
            result.failures.append("\(result.name), round \(round + 1): Medic ran \(restarts) restarts, \(expectedRestarts) expected")
        }
    }
}
