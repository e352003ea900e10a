import Audit
import Foundation
import Glibc
import MedicCore
import Systemd
import TestHost
import Testing

/// Three backends in a real test host behind a real HAProxy on loopback, with or without medicd.
struct PoolBench {
    let host: TestHost
    let manager: SystemdManager
    let ports: [Int]
    /// The heartbeat socket as the units see it, and its directory from outside.
    static let heartbeatSocket = "/run/medic-hb/heartbeat.sock"
    var runtime: String { host.directory + "/run/medic-hb" }

    static let units = ["app1.service", "app2.service", "app3.service"]

    /// Installs and starts the three backends: each beats every 50 ms to medicd's socket, and
    /// answers with the status in `/run/appN.status` while that file exists (cleared at start).
    static func start(on host: TestHost) async throws -> PoolBench {
        let ports = (0..<3).map { _ in freePort() }
        var units: [String: String] = [:]
        for (index, port) in ports.enumerated() {
            units[Self.units[index]] = """
                [Service]
                Environment=NOTIFY_SOCKET=\(heartbeatSocket)
                ExecStartPre=/bin/rm -f /run/app\(index + 1).status
                ExecStart=\(try Paths.backend()) --port \(port) --name app\(index + 1) --heartbeat-ms 50 --status-file /run/app\(index + 1).status
                """
        }
        let manager = try await installAndStart(host, units, start: Self.units)
        return PoolBench(host: host, manager: manager, ports: ports)
    }

    /// The pool playbook for the three backends; `capacity` is `min_in_service`.
    func playbook(haproxy: HAProxy, capacity: String = "50%", extra: String = "") -> String {
        poolPlaybook(units: Array(zip(Self.units, ports)).map { (unit: $0.0, port: $0.1) }, haproxySocket: haproxy.socket, capacity: capacity, extra: extra)
    }

    /// Reverts the three backends to running, ready and healthy between scenarios.
    func reset() async throws {
        for unit in Self.units {
            for pid in host.processes(ofUnit: unit) { kill(pid, SIGCONT) }
            _ = try await manager.restartUnit(unit)
        }
    }

    /// Plays one fault on app1 (from outside, as the kernel or an operator would).
    enum Fault: String, CaseIterable {
        case crash, hang, sick
    }

    func inject(_ fault: Fault, unit: String = "app1.service") throws {
        let pid = try #require(host.processes(ofUnit: unit).first)
        switch fault {
        case .crash: kill(pid, SIGKILL)
        case .hang: kill(pid, SIGSTOP)
        case .sick:
            let index = unit.dropFirst(3).prefix(1)
            try "503\n".write(toFile: host.directory + "/run/app\(index).status", atomically: true, encoding: .utf8)
        }
    }
}

@Suite("The load balancer pool: HAProxy's runtime API, on a real systemd and a real HAProxy", .serialized, .timeLimit(.minutes(5)))
struct PoolTests {
    @Test("crash, hang and sick backend: Medic takes it out, restarts it and returns it; requests failed are printed beside HAProxy's checks alone")
    func faultsUnderLoad() async throws {
        try await withTestHost("pool") { host in
            let bench = try await PoolBench.start(on: host)
            defer { bench.manager.bus.close() }
            let checks = HAProxy.Checks(redispatch: true)
            var table: [String] = []
            for fault in PoolBench.Fault.allCases {
                // HAProxy's own checks alone.
                try await bench.reset()
                let alone = try HAProxy(directory: host.directory + "/haproxy-alone-\(fault)", backendPorts: bench.ports, checks: checks)
                defer { alone.stop() }
                try await Task.sleep(for: .milliseconds(300))
                let withoutMedic = try await LoadResult.run(port: alone.port, rate: 500, duration: .seconds(9), directory: alone.directory) {
                    try await Task.sleep(for: .seconds(1))
                    try bench.inject(fault)
                }
                alone.stop()

                // The same, with medicd.
                try await bench.reset()
                let haproxy = try HAProxy(directory: host.directory + "/haproxy-medic-\(fault)", backendPorts: bench.ports, checks: checks)
                defer { haproxy.stop() }
                let medicd = try RunningMedicd.start(
                    on: host, playbook: bench.playbook(haproxy: haproxy), arguments: ["--runtime", bench.runtime], name: "medicd-\(fault)")
                defer { medicd.process.stop() }
                try await Task.sleep(for: .milliseconds(300))
                let withMedic = try await LoadResult.run(port: haproxy.port, rate: 500, duration: .seconds(5), directory: haproxy.directory) {
                    try await Task.sleep(for: .seconds(1))
                    try bench.inject(fault)
                }
                let recovered = await eventually(timeout: .seconds(10)) {
                    ((try? medicd.records(kinds: [.incidentClosed]).contains { $0.facts["outcome"] == "recovered" }) ?? false)
                }
                let records = try medicd.records()
                #expect(recovered, "\(fault): \(records.map(\.message))\n\(medicd.process.output)")
                let poolSteps = records.filter { $0.kind == "step-result" && $0.step == "pool" }
                #expect(poolSteps.count == 2, "\(fault): \(poolSteps.map(\.message))")
                let out = try #require(poolSteps.first, "\(fault): no pool step in \(records.map(\.message))")
                #expect(out.facts["result"] == "succeeded" && out.facts["pool_after"]?.contains("MAINT") == true, "\(out.message) \(out.details)")
                #expect(out.facts["pool_before"]?.hasPrefix("s1 ") == true)
                let back = try #require(poolSteps.last)
                #expect(back.message.contains("returned to service"), "\(back.message)")
                #expect(try haproxy.serverStatus()["s1"]?.hasPrefix("MAINT") == false)
                #expect(records.contains { $0.kind == "step-result" && $0.step == "restart" && $0.facts["result"] == "succeeded" })
                if fault == .hang {
                    // The page of a hang behind HAProxy: the server's pool band, in service, in
                    // maintenance, and in service again.
                    let page = try checkReportPage(state: medicd.state, incident: try #require(out.incident))
                    #expect(page.marks("pool pool-ready") == 2 && page.marks("pool pool-maint") == 1, "\(page.dom.count)")
                }

                let trigger = try #require(records.first { $0.kind == "incident-opened" })
                let observation = try #require(records.last { $0.kind == "observation" && $0.target == "app1.service" && $0.seq! < trigger.seq! })
                var outAfter = millisecondsBetween(observation, out)
                if let late = observation.facts["late_ms"].flatMap(Double.init) { outAfter += late }
                table.append("\(fault): HAProxy checks alone (\(checks)): \(withoutMedic); with Medic: \(withMedic); "
                    + "out of the pool \(String(format: "%.1f", outAfter)) ms after \(fault == .hang ? "the missed heartbeat deadline" : "the observation")")
                #expect(withMedic.affected <= withoutMedic.affected, "\(fault): \(withMedic) vs \(withoutMedic)")
                medicd.process.stop()
                haproxy.stop()
            }
            try await bench.reset()
            print("3 backends behind HAProxy at 500 requests/s, fault on s1 at t=1s:\n  " + table.joined(separator: "\n  "))
        }
    }

    @Test("two of three crash together: both are taken out and restarted (a dead server is not capacity); two hang together: the second waits for capacity, then goes; an operator's maintenance is left alone")
    func capacityGuard() async throws {
        try await withTestHost("capacity") { host in
            let bench = try await PoolBench.start(on: host)
            defer { bench.manager.bus.close() }
            let haproxy = try HAProxy(directory: host.directory + "/haproxy", backendPorts: bench.ports)
            defer { haproxy.stop() }
            let medicd = try RunningMedicd.start(on: host, playbook: bench.playbook(haproxy: haproxy), arguments: ["--runtime", bench.runtime])
            defer { medicd.process.stop() }
            try await Task.sleep(for: .milliseconds(300))

            // Two crash together: neither serves, so taking both out takes no capacity away.
            try bench.inject(.crash, unit: "app1.service")
            try bench.inject(.crash, unit: "app2.service")
            let healed = await eventually(timeout: .seconds(15)) {
                ((try? medicd.records(kinds: [.stepResult]).filter { $0.message.contains("returned to service") }.count) ?? 0) == 2
            }
            var records = try medicd.records()
            #expect(healed, "\(records.map(\.message))")
            #expect(!records.contains { $0.kind == "guard-stopped" && $0.facts["guard"] == "capacity" }, "\(records.map(\.message))")
            let outs = records.filter { $0.kind == "step-result" && $0.step == "pool" && $0.facts["pool_after"]?.contains("MAINT") == true }
            #expect(Set(outs.compactMap(\.target)) == ["app1.service", "app2.service"])
            #expect(outs.contains { $0.facts["capacity"]?.hasPrefix("not counted") == true })
            for unit in ["app1.service", "app2.service"] {
                #expect(records.contains { $0.kind == "step-result" && $0.step == "restart" && $0.target == unit && $0.facts["result"] == "succeeded" }, "\(unit)")
            }
            #expect(try haproxy.serverStatus().values.allSatisfy { !$0.hasPrefix("MAINT") })

            // Two hang together: both still "serve" as far as anyone can tell, so the second is
            // held until the first is back in the pool, then taken out, restarted and returned.
            _ = await eventually(timeout: .seconds(5)) { ((try? medicd.records(kinds: [.incidentClosed]).count) ?? 0) >= 2 }
            let mark = try #require(try medicd.records().last?.seq)
            try bench.inject(.hang, unit: "app1.service")
            try bench.inject(.hang, unit: "app2.service")
            let both = await eventually(timeout: .seconds(20)) {
                ((try? medicd.records().filter { $0.seq! > mark && $0.message.contains("returned to service") }.count) ?? 0) == 2
            }
            records = try medicd.records().filter { $0.seq! > mark }
            #expect(both, "\(records.map(\.message))")
            let stop = try #require(records.first { $0.kind == "guard-stopped" && $0.facts["guard"] == "capacity" }, "\(records.map(\.message))")
            print("capacity guard: \(stop.target ?? "?"): \(stop.message)")
            #expect(stop.message.contains("would leave 1 of 3 servers in service; at least 2 must stay"))
            let other = stop.target == "app1.service" ? "app2.service" : "app1.service"
            let returned = try #require(records.first { $0.target == other && $0.message.contains("returned to service") })
            let takenOut = try #require(records.first { $0.target == stop.target && $0.kind == "step-result" && $0.step == "pool" && $0.facts["pool_after"]?.contains("MAINT") == true })
            let waited = millisecondsBetween(returned, takenOut)
            print("capacity guard: the held server left the pool \(Int(waited)) ms after the other returned")
            #expect(waited >= 0 && waited < 2000, "retried as capacity returned, not on a timer: \(waited) ms")
            #expect(!records.contains { $0.kind == "escalation" && $0.message.contains("needs a human") })
            #expect(try haproxy.serverStatus().values.allSatisfy { !$0.hasPrefix("MAINT") })

            // An operator puts s3 in maintenance; an incident on it leaves it there.
            #expect(try haproxy.command("set server app/s3 state maint").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
            try bench.inject(.crash, unit: "app3.service")
            #expect(await eventually(timeout: .seconds(10)) {
                ((try? medicd.records(unit: "app3.service", kinds: [.stepResult]).contains { $0.message.contains("Medic did not take it out") }) ?? false)
            }, "\((try? medicd.records(unit: "app3.service").map(\.message)) ?? [])")
            #expect(try haproxy.serverStatus()["s3"]?.hasPrefix("MAINT") == true)
        }
    }

    @Test("HAProxy stopped, or a server name it does not know: a failed result that names which, and escalation")
    func haproxyFailures() async throws {
        try await withTestHost("haproxy-down") { host in
            let bench = try await PoolBench.start(on: host)
            defer { bench.manager.bus.close() }
            let haproxy = try HAProxy(directory: host.directory + "/haproxy", backendPorts: bench.ports)
            let wrongName = bench.playbook(haproxy: haproxy).replacingOccurrences(of: "server: s2", with: "server: s9")
            let medicd = try RunningMedicd.start(on: host, playbook: wrongName, arguments: ["--runtime", bench.runtime])
            defer { medicd.process.stop() }
            try await Task.sleep(for: .milliseconds(300))
            try bench.inject(.crash, unit: "app2.service")
            #expect(await eventually(timeout: .seconds(10)) {
                ((try? medicd.records(unit: "app2.service", kinds: [.stepResult]).contains { $0.message.contains("has no server 's9'") }) ?? false)
            }, "\((try? medicd.records(unit: "app2.service").map(\.message)) ?? [])")
            haproxy.stop()
            try bench.inject(.crash, unit: "app1.service")
            #expect(await eventually(timeout: .seconds(10)) {
                ((try? medicd.records(unit: "app1.service", kinds: [.escalation]).isEmpty == false) ?? false)
            })
            let failed = try #require(try medicd.records(unit: "app1.service", kinds: [.stepResult]).first { $0.step == "pool" })
            print("HAProxy stopped: \(failed.message)")
            #expect(failed.facts["result"] == "failed")
            #expect(failed.message.contains("unreachable at \(haproxy.socket)"))
            // app2 is down, so its plan went on without the pool step: restarted, verified, and
            // escalated when returning the unknown server failed.
            #expect(await eventually(timeout: .seconds(10)) {
                ((try? medicd.records(unit: "app2.service", kinds: [.escalation]).isEmpty == false) ?? false)
            }, "\((try? medicd.records(unit: "app2.service").map(\.message)) ?? [])")
            #expect(try medicd.records(unit: "app2.service", kinds: [.stepResult]).contains { $0.step == "restart" && $0.facts["result"] == "succeeded" })
        }
    }
}
