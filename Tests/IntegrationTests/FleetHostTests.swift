import Audit
import Fleet
import Foundation
import Glibc
import MedicCore
import Systemd
import TestHost
import Testing

@Suite("The fleet on etcd: hosts watching hosts", .serialized, .timeLimit(.minutes(5)))
struct FleetHostTests {
    @Test("a host crashes: exactly one peer takes its server out of HAProxy, within the lease's TTL and the corroboration; it returns once the host is back and answers")
    func hostDown() async throws {
        let etcd = try EtcdCluster(directory: try temporaryDirectory() + "/etcd")
        defer { etcd.stop() }
        try await withFleet(3, etcd: etcd) { hosts, haproxy in
            let ports = hosts.map { (web: $0.webPort, fleet: $0.fleetPort) }
            let store = try EtcdGateway(.init(endpoints: etcd.endpoints))
            defer { Task { await store.shutdown() } }
            #expect(await eventually(timeout: .seconds(10)) { ((try? await store.range("/medic/t/hosts/", prefix: true).keys.count) ?? 0) == 3 })
            let registration = try #require(try await store.get("/medic/t/hosts/h2"))
            #expect(registration.text.contains(#""server":"s2""#) && registration.text.contains("127.0.0.1:\(ports[1].fleet)"), "\(registration.text)")

            // Crash h2: its systemd killed, and every process of it with it (medicd too).
            // Under steady load through HAProxy: 200 requests a second, from before the crash until
            // the server is out.
            let victim = try #require(hosts[1].host.systemdPID)
            var out = false
            var detected: Duration = .zero
            let load = try await LoadResult.run(
                port: haproxy.port, rate: 200, duration: .seconds(25), directory: hosts[1].host.directory, endsWithDuring: true
            ) {
                try await Task.sleep(for: .milliseconds(500))
                let crashed = ContinuousClock.now
                kill(victim, SIGKILL)
                out = await eventually(timeout: .seconds(20)) { ((try? haproxy.serverStatus()["s2"]) ?? "").hasPrefix("MAINT") }
                detected = ContinuousClock.now - crashed
            }
            print("fleet: host crash → its server out of the pool in \(detected) (lease TTL 3 s); requests through HAProxy meanwhile: \(load)")
            #expect(out, "s2 is \((try? haproxy.serverStatus()["s2"]) ?? "?"); h1: \(hosts[0].records([.observation, .stepResult]).map(\.message)); h3: \(hosts[2].records([.observation, .stepResult]).map(\.message))")
            // The step's result is recorded once the step returns, a moment after HAProxy shows it.
            let peers = [hosts[0], hosts[2]]
            _ = await eventually(timeout: .seconds(5)) { peers.contains(where: Self.tookH2Out) }
            let actors = peers.filter(Self.tookH2Out)
            #expect(actors.count == 1, "peers that acted on h2: \(actors.map(\.name))")
            let acting = try #require(actors.first)
            let other = [hosts[0], hosts[2]].first { $0.name != acting.name }!
            let opened = try #require(acting.records([.incidentOpened]).first { $0.target == "host/h2" })
            #expect(opened.facts["trigger"] == "host-down")
            let evidence = try #require(acting.records([.observation]).first { $0.target == "host/h2" && $0.facts["observed"] == "host-down" })
            #expect(evidence.facts["verdicts"]?.contains("unreachable") == true && evidence.facts["fencing_token"] != nil, "\(evidence.facts)")
            // The pool step ran under that lock: it carries the same fencing token.
            let taken = acting.records([.stepResult]).first { $0.target == "host/h2" && $0.step == "pool" }
            #expect(taken?.facts["fencing_token"] == evidence.facts["fencing_token"], "\(taken?.facts ?? [:])")
            #expect(other.records([.observation]).contains { $0.target == "host/h2" && $0.message.contains("\(acting.name) acts on it") })
            #expect(try haproxy.serverStatus()["s1"]?.hasPrefix("MAINT") == false && haproxy.serverStatus()["s3"]?.hasPrefix("MAINT") == false)
            // medic fleet, on each peer: h2 down, and who acts on it.
            let view = try medic(["fleet", "--json", "--socket", other.host.directory + "/run/medic/control.sock"])
            #expect(view.status == 0, "\(view.output)")
            #expect(view.output.contains(#"{"actingHost":"\#(acting.name)","address":"127.0.0.1:\#(ports[1].fleet)","name":"h2""#)
                && view.output.contains(#""state":"down""#), "\(view.output)")
            let table = try medic(["fleet", "--socket", acting.host.directory + "/run/medic/control.sock"])
            #expect(table.output.contains("fleet t: this host is \(acting.name), registered"), "\(table.output)")
            #expect(table.output.split(separator: "\n").contains { $0.hasPrefix("h2") && $0.contains("down") && $0.contains("app/s2") }, "\(table.output)")

            // h2 boots again: once it is registered and answers, the peer that took s2 out returns it.
            try hosts[1].host.powerOn()
            try await hosts[1].start(etcd: etcd.endpoints, haproxy: haproxy.socket)
            let back = await eventually(timeout: .seconds(30)) { ((try? haproxy.serverStatus()["s2"]) ?? "MAINT").hasPrefix("MAINT") == false }
            #expect(back, "s2 is \((try? haproxy.serverStatus()["s2"]) ?? "?"); \(acting.name): \(acting.records([.stepResult, .incidentClosed]).map(\.message))")
            let poolSteps = { acting.records([.stepResult]).filter { $0.target == "host/h2" && $0.step == "pool" } }
            #expect(await eventually(timeout: .seconds(5)) { poolSteps().count == 2 })
            let returned = poolSteps()
            #expect(returned.count == 2 && returned.last?.facts["result"] == "succeeded" && returned.last?.facts["pool_held"] == "false", "\(returned.map(\.facts))")
            #expect(acting.records([.observation]).contains { $0.target == "host/h2" && $0.facts["observed"] == "host-returned" })
            // h2's own log says what was done to it while it was away, and by whom.
            let told = { hosts[1].records([.daemon]).filter { $0.message.hasPrefix("while this host was away, \(acting.name) did:") } }
            #expect(await eventually(timeout: .seconds(10)) { told().contains { $0.message.contains("pool succeeded: app/s2 taken out of service") } },
                    "\(hosts[1].records([.daemon]).map(\.message))")
            #expect(told().contains { $0.message.contains("incident") && $0.facts["peer_incident"] != "" })
        }
    }
    @Test("the peer that took a dead host's server out dies too: the next in line for the lock takes over, and returns the server when the host is back")
    func takeover() async throws {
        let etcd = try EtcdCluster(directory: try temporaryDirectory() + "/etcd")
        defer { etcd.stop() }
        try await withFleet(3, etcd: etcd) { hosts, haproxy in
            try await takeover(hosts, haproxy: haproxy, etcd: etcd)
        }
    }

    private func takeover(_ hosts: [FleetTestHost], haproxy: HAProxy, etcd: EtcdCluster) async throws {
        let store = try EtcdGateway(.init(endpoints: etcd.endpoints))
        defer { Task { await store.shutdown() } }
        #expect(await eventually(timeout: .seconds(10)) { ((try? await store.range("/medic/t/hosts/", prefix: true).keys.count) ?? 0) == 3 })
        kill(try #require(hosts[1].host.systemdPID), SIGKILL)
        #expect(await eventually(timeout: .seconds(20)) { ((try? haproxy.serverStatus()["s2"]) ?? "").hasPrefix("MAINT") })
        let peers = [hosts[0], hosts[2]]
        #expect(await eventually(timeout: .seconds(5)) { peers.contains { $0.ran("pool", on: "host/h2") } })
        let acting = try #require(peers.first { $0.ran("pool", on: "host/h2") })
        let next = peers.first { $0.name != acting.name }!
        #expect(await eventually(timeout: .seconds(5)) { next.records([.observation]).contains { $0.target == "host/h2" && $0.message.contains("\(acting.name) acts on it") } })
        // The acting peer dies too, with s2 still out.
        kill(try #require(acting.host.systemdPID), SIGKILL)
        let tookOver = await eventually(timeout: .seconds(20)) {
            next.records([.observation]).contains { $0.target == "host/h2" && $0.message.contains("this host takes over") }
        }
        let locks = ((try? await store.range("/medic/t/locks/h2/", prefix: true).keys) ?? []).map { "\($0.key)@\($0.createRevision)" }
        #expect(tookOver, "\(next.name): \(next.records([.observation, .daemon]).map { "\($0.target ?? "-"): \($0.message)" }); locks on h2: \(locks)")
        let opened = next.records([.incidentOpened]).first { $0.target == "host/h2" }
        #expect(opened?.facts["trigger"] == "host-down", "\(next.records([.incidentOpened]).map(\.message))")
        #expect(await eventually(timeout: .seconds(5)) { next.ran("pool", on: "host/h2") },
                "\(next.records([.stepIntent, .stepResult, .guardStopped, .decision]).filter { $0.target == "host/h2" }.map(\.message))")
        #expect(try haproxy.serverStatus()["s2"]?.hasPrefix("MAINT") == true)
        // h2 is back: the peer that took over returns s2, which the dead peer had taken out.
        let h2 = hosts[1]
        try h2.host.powerOn()
        try await h2.start(etcd: etcd.endpoints, haproxy: haproxy.socket)
        let back = await eventually(timeout: .seconds(30)) { ((try? haproxy.serverStatus()["s2"]) ?? "MAINT").hasPrefix("MAINT") == false }
        #expect(back, "s2 is \((try? haproxy.serverStatus()["s2"]) ?? "?"); \(next.name): \(next.records([.observation, .stepResult]).filter { $0.target == "host/h2" }.map(\.message))")
        // Its record follows the change in HAProxy.
        let returned = { next.records([.stepResult]).last { $0.target == "host/h2" && $0.step == "pool" } }
        #expect(await eventually(timeout: .seconds(5)) { returned()?.message.contains("app/s2 returned to service") == true },
                "\(returned()?.message ?? "no pool step")")
        #expect(await eventually(timeout: .seconds(5)) { (try? await store.range("/medic/t/held/h2/", prefix: true).keys.isEmpty) == true })
    }

    /// Boots `count` fleet hosts against `etcd` (see `FleetTestBed`), runs `body`, and
    /// destroys the hosts and HAProxy whatever happens.
    /// Whether the peer recorded the result of its pool step on h2.
    private static func tookH2Out(_ peer: FleetTestHost) -> Bool {
        peer.records([.stepResult]).contains { $0.target == "host/h2" && $0.step == "pool" }
    }

    private func withFleet(
        _ count: Int, etcd: EtcdCluster, network: TestNetwork? = nil, rule: String = FleetTestHost.restartOnCrash,
        _ body: ([FleetTestHost], HAProxy) async throws -> Void
    ) async throws {
        let bed = try await FleetTestBed(count: count, etcd: etcd, medicd: Paths.medicd, network: network, rule: rule)
        defer { bed.destroy() }
        try await body(bed.hosts, bed.haproxy)
    }

    @Test("etcd stopped: the host keeps healing its own services, says etcd is out of reach, and registers again when etcd is back")
    func etcdStopped() async throws {
        let etcd = try EtcdCluster(directory: try temporaryDirectory() + "/etcd")
        defer { etcd.stop() }
        try await withFleet(1, etcd: etcd) { hosts, _ in
            let h1 = hosts[0]
            let store = try EtcdGateway(.init(endpoints: etcd.endpoints))
            defer { Task { await store.shutdown() } }
            #expect(await eventually(timeout: .seconds(10)) { ((try? await store.get("/medic/t/hosts/h1")) ?? nil) != nil })
            etcd.members[0].stop()
            #expect(await eventually(timeout: .seconds(10)) { h1.records([.daemon]).contains { $0.message.contains("etcd is out of reach") } })
            let view = try medic(["fleet", "--socket", h1.host.directory + "/run/medic/control.sock"])
            #expect(view.output.contains("etcd unreachable since"), "\(view.output)")
            // A crash of its own service is healed as ever.
            kill(try #require(h1.host.processes(ofUnit: "web.service").first), SIGKILL)
            #expect(await eventually(timeout: .seconds(10)) { h1.records([.stepResult]).contains { $0.step == "restart" && $0.facts["result"] == "succeeded" } })
            // etcd staying away is an outside condition: medicd keeps running (one start only),
            // its fleet watch retrying.
            try await Task.sleep(for: .seconds(6))
            #expect(h1.records([.daemon]).filter { $0.message.hasPrefix("medicd started") }.count == 1, "\(h1.records([.daemon]).map(\.message))")
            #expect(h1.records([.observation]).contains { $0.target == "fleet" && $0.message.contains("cannot watch the fleet") })
            try etcd.members[0].start()
            #expect(await eventually(timeout: .seconds(20)) { ((try? await store.get("/medic/t/hosts/h1")) ?? nil) != nil },
                    "\(h1.records([.daemon]).map(\.message))")
            #expect(h1.records([.daemon]).contains { $0.message.contains("etcd answers again") || $0.message.contains("registered as h1") })
        }
    }

    @Test("three etcd members, the leader killed: registrations stay alive and a host's death is still detected")
    func leaderLoss() async throws {
        let etcd = try EtcdCluster(size: 3, directory: try temporaryDirectory() + "/etcd")
        defer { etcd.stop() }
        try await withFleet(3, etcd: etcd) { hosts, haproxy in
            let store = try EtcdGateway(.init(endpoints: etcd.endpoints))
            defer { Task { await store.shutdown() } }
            #expect(await eventually(timeout: .seconds(10)) { ((try? await store.range("/medic/t/hosts/", prefix: true).keys.count) ?? 0) == 3 })
            let leader = try #require(etcd.members.first { $0.endpoint == (try? etcd.leaderEndpoint()) })
            leader.stop()
            // Two TTLs later, every registration is still there, and nobody was declared lost.
            try await Task.sleep(for: .seconds(6))
            #expect(try await store.range("/medic/t/hosts/", prefix: true).keys.count == 3)
            #expect(hosts.allSatisfy { $0.records([.observation]).allSatisfy { !($0.target ?? "").hasPrefix("host/") } },
                    "\(hosts.map { $0.records([.observation]).filter { ($0.target ?? "").hasPrefix("host/") }.map(\.message) })")
            kill(try #require(hosts[2].host.systemdPID), SIGKILL)
            #expect(await eventually(timeout: .seconds(20)) { ((try? haproxy.serverStatus()["s3"]) ?? "").hasPrefix("MAINT") })
        }
    }

    @Test("two hosts need a reboot, with a fleet budget of 1: one reboots, the other waits; the first never comes back, so the slot stays held, the second escalates at its deadline, and medic fleet release frees it")
    func rebootBudget() async throws {
        let etcd = try EtcdCluster(directory: try temporaryDirectory() + "/etcd")
        defer { etcd.stop() }
        let rule = """
              - when: crashed
                do:
                  - reboot: { at_most: 2 in 6h, fleet_budget: 1, budget_wait: 6s }
                escalate:
                  - after: 1 failures in 1h
                    do: [ { notify: { to: journal, message: "reboot refused: no fleet budget slot" } } ]
            """
        try await withFleet(2, etcd: etcd, rule: rule) { hosts, _ in
            for fleetHost in hosts { fleetHost.host.powerOffOnNextReboot() }
            // Both hosts' service crashes at once: both want to reboot.
            for fleetHost in hosts { kill(try #require(fleetHost.host.processes(ofUnit: "web.service").first), SIGKILL) }
            var first: FleetTestHost?
            let deadline = ContinuousClock.now + .seconds(20)
            while first == nil, ContinuousClock.now < deadline {
                first = hosts.first { $0.host.waitForPowerOff(timeout: .milliseconds(100)) }
            }
            let rebooted = try #require(first, "no host rebooted")
            let waiting = hosts.first { $0.name != rebooted.name }!
            // The other waits for the slot, never reboots, and escalates when its wait is over.
            let escalated = await eventually(timeout: .seconds(20)) {
                waiting.records([.stepResult]).contains { $0.step == "notify" && $0.facts["result"] == "succeeded" }
            }
            #expect(escalated, "\(waiting.records([.stepResult, .guardStopped, .escalation]).map(\.message))")
            #expect(!waiting.host.waitForPowerOff(timeout: .milliseconds(10)), "\(waiting.name) rebooted while \(rebooted.name) held the only slot")
            let refusal = waiting.records([.guardStopped]).first { $0.step == "reboot" }
            #expect(refusal?.facts["guard"] == "fleet-budget" && refusal?.message.contains("held by \(rebooted.name)") == true,
                    "\(hosts.map { "\($0.name): \($0.records([.stepIntent, .stepResult, .guardStopped, .daemon]).map(\.message))" })")
            let socket = waiting.host.directory + "/run/medic/control.sock"
            let view = try medic(["fleet", "--json", "--socket", socket])
            #expect(view.output.contains(#""budget":"reboot","host":"\#(rebooted.name)""#), "\(view.output)")

            // A person frees the dead host's slot; the waiting host's next try reboots.
            let release = try medic(["fleet", "release", rebooted.name, "--socket", socket])
            #expect(release.status == 0 && release.output.contains("released \(rebooted.name)'s fleet budget slots: reboot/0"), "\(release.output)")
            #expect(waiting.records([.humanCommand]).contains { $0.message.hasPrefix("released \(rebooted.name)") && $0.actor.hasPrefix("uid 0") })
            let again = try medic(["run", "web", "--target", "web.service", "--socket", socket])
            #expect(again.status == 0, "\(again.output)")
            #expect(waiting.host.waitForPowerOff(timeout: .seconds(20)), "\(waiting.records([.stepResult, .guardStopped]).map(\.message))")
        }
    }

    @Test("a pool budget of 1: two hosts' services crash at once; one server goes out, the other host waits for the slot, which is given back once the first recovers: never both out")
    func poolBudget() async throws {
        let etcd = try EtcdCluster(directory: try temporaryDirectory() + "/etcd")
        defer { etcd.stop() }
        let rule = """
              - when: crashed
                do:
                  - pool: { state: maint, fleet_budget: 1, budget: app-pool, budget_wait: 30s }
                  - restart
                  - verify: { healthy: within 10s }
                  - pool: ready
            guards: { stabilise: 1s }
            """
        try await withFleet(2, etcd: etcd, rule: rule) { hosts, haproxy in
            try await poolBudget(hosts, haproxy: haproxy)
        }
    }

    private func poolBudget(_ hosts: [FleetTestHost], haproxy: HAProxy) async throws {
        for fleetHost in hosts { kill(try #require(fleetHost.host.processes(ofUnit: "web.service").first), SIGKILL) }
        var bothOut = false
        let returned = { (host: FleetTestHost) in
            host.records([.stepResult]).contains { $0.step == "pool" && $0.message.contains("returned to service") }
        }
        let deadline = ContinuousClock.now + .seconds(40)
        while ContinuousClock.now < deadline, !hosts.allSatisfy(returned) {
            let status = (try? haproxy.serverStatus()) ?? [:]
            if status["s1"]?.hasPrefix("MAINT") == true && status["s2"]?.hasPrefix("MAINT") == true { bothOut = true }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(!bothOut, "both servers were out of the pool at once")
        #expect(hosts.allSatisfy(returned), "\(hosts.map { "\($0.name): \($0.records([.stepResult, .guardStopped, .daemon]).map(\.message))" })")
        let waits = hosts.compactMap { host in
            host.records([.stepResult]).first { $0.step == "pool" && $0.facts["budget"] == "app-pool" }?.facts["budget_waited_ms"].flatMap(Int.init)
        }
        #expect(waits.count == 2 && waits.contains { $0 > 500 }, "one host must have waited for the slot: \(waits)")
        #expect(hosts.contains { $0.records([.daemon]).contains { $0.message.contains("fleet budget app-pool: slot 0 given back") } })
    }

    @Test("a host cut off from etcd but not from its peers is isolated, not down: nothing taken out, its own healing goes on, and it is back when the link is")
    func isolated() async throws {
        let network = try TestNetwork()
        defer { network.stop() }
        let etcd = try EtcdCluster(directory: try temporaryDirectory() + "/etcd", host: network.gateway)
        defer { etcd.stop() }
        try await withFleet(3, etcd: etcd, network: network) { hosts, haproxy in
            try await isolation(hosts, haproxy: haproxy, network: network, etcd: etcd)
        }
    }

    private func isolation(_ hosts: [FleetTestHost], haproxy: HAProxy, network: TestNetwork, etcd: EtcdCluster) async throws {
        let store = try EtcdGateway(.init(endpoints: etcd.endpoints))
        defer { Task { await store.shutdown() } }
        #expect(await eventually(timeout: .seconds(10)) { ((try? await store.range("/medic/t/hosts/", prefix: true).keys.count) ?? 0) == 3 })
        let h2 = hosts[1]
        let etcdPort = try #require(Int(etcd.endpoints[0].split(separator: ":").last ?? ""))
        try network.cut(h2.host, from: network.gateway, port: etcdPort)
        let h1 = hosts[0], h3 = hosts[2]
        let found = await eventually(timeout: .seconds(20)) { h1.saw("host-isolated", about: "host/h2") || h3.saw("host-isolated", about: "host/h2") }
        #expect(found, "\([h1, h3].map { "\($0.name): \($0.records([.observation]).filter { $0.target == "host/h2" }.map(\.message))" })")
        let acting = [h1, h3].filter { $0.saw("host-isolated", about: "host/h2") }
        #expect(acting.count == 1, "\(acting.map(\.name))")
        let actor = try #require(acting.first)
        let decision = actor.records([.observation]).first { $0.facts["observed"] == "host-isolated" }
        #expect(decision?.facts["verdicts"]?.contains("reachable (GET") == true, "\(decision?.facts ?? [:])")
        #expect(!h1.ran("pool", on: "host/h2") && !h3.ran("pool", on: "host/h2"))
        #expect(try haproxy.serverStatus()["s2"]?.hasPrefix("MAINT") == false)
        #expect(await eventually(timeout: .seconds(5)) { actor.ran("notify", on: "host/h2") })
        // Cut off, h2 still heals its own service.
        kill(try #require(h2.host.processes(ofUnit: "web.service").first), SIGKILL)
        #expect(await eventually(timeout: .seconds(10)) { h2.ran("restart", on: "web.service") })
        #expect(h2.records([.daemon]).contains { $0.message.contains("etcd is out of reach") })
        // The link back: h2 registers again, and the isolated incident closes as it returns.
        try network.mend(h2.host)
        #expect(await eventually(timeout: .seconds(20)) { actor.saw("host-returned", about: "host/h2") })
        #expect(await eventually(timeout: .seconds(10)) { actor.ran("verify", on: "host/h2") })
    }
}
