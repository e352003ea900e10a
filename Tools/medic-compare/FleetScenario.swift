import Fleet
import Foundation
import Glibc
import MedicCore
import Synchronization
import TestHost

/// Scenario 8: the fleet on etcd. First, three hosts (test hosts, each with medicd as a unit)
/// behind one HAProxy: a host's systemd killed, and the time until a peer has its server out of
/// the pool (lease TTL 3 s, keep-alive 1 s), over repeated crashes. Then `simulated` hosts on
/// one etcd member, each a lease kept alive every second with its registration under it (lease
/// clients, not daemons): etcd's requests per second, its CPU and memory, and how long after
/// one host stops its keep-alives a watcher sees it gone.
struct FleetScenario {
    let medicd: String
    let rounds: Int
    let simulated: Int

    func report() async throws -> [String] {
        var failures: [String] = []
        print("")
        print("8. The fleet on etcd (one member, Debian's etcd-server); lease TTL 3 s, keep-alive every 1 s:")
        let (crashes, crashFailures) = try await hostCrashes()
        failures += crashFailures
        print(Table(header: ["fault", "rounds", "fault → server out of the pool (ms), median / p99"], rows: [
            ["a host's systemd killed (3 hosts, HAProxy)", String(crashes.count), Spread(crashes)?.milliseconds ?? "never"],
        ]).render())
        let load = try await simulatedHosts()
        print(Table(header: ["hosts", "etcd requests/s", "etcd CPU (share of one core)", "etcd resident memory", "one host's keep-alives stopped → seen gone (ms)"], rows: [
            [String(simulated), String(format: "%.0f", load.requestsPerSecond), String(format: "%.1f%%", load.cpu * 100), String(format: "%.1f MiB", load.residentMiB),
             load.detected.map { String(format: "%.0f", $0) } ?? "never"],
        ]).render())
        if load.detected == nil { failures.append("fleet: a simulated host's loss was never seen") }
        return failures
    }

    /// Kills each round one host's systemd, measures until its server is in maintenance, then
    /// boots it again and waits for its server to be back.
    private func hostCrashes() async throws -> ([Double], [String]) {
        let etcd = try EtcdCluster(directory: try scratch("etcd"))
        defer { etcd.stop() }
        let bed = try await FleetTestBed(count: 3, etcd: etcd, medicd: medicd)
        defer { bed.destroy() }
        let store = try EtcdGateway(.init(endpoints: etcd.endpoints))
        var times: [Double] = []
        var failures: [String] = []
        guard await until(.seconds(15), { ((try? await store.range("/medic/t/hosts/", prefix: true).keys.count) ?? 0) == 3 }) else {
            return ([], ["fleet: the three hosts did not all register"])
        }
        for round in 0..<rounds {
            let victim = bed.hosts[round % 3]
            guard let pid = victim.host.systemdPID else { continue }
            let started = ContinuousClock.now
            kill(pid, SIGKILL)
            guard await until(.seconds(30), { ((try? bed.haproxy.serverStatus()[victim.server]) ?? "").hasPrefix("MAINT") }) else {
                failures.append("fleet: \(victim.name)'s server never left the pool after its host died")
                continue
            }
            times.append(Double((ContinuousClock.now - started).components.attoseconds) / 1e15 + Double((ContinuousClock.now - started).components.seconds) * 1000)
            try victim.host.powerOn()
            try await victim.start(etcd: etcd.endpoints, haproxy: bed.haproxy.socket)
            guard await until(.seconds(30), { !((try? bed.haproxy.serverStatus()[victim.server]) ?? "MAINT").hasPrefix("MAINT") }) else {
                failures.append("fleet: \(victim.name)'s server did not return to the pool once its host was back")
                break
            }
            // The incident on it closed (its lock let go) before the next round.
            let target = "host/\(victim.name)"
            _ = await until(.seconds(30)) {
                bed.hosts.allSatisfy { peer in
                    let records = peer.records([.incidentOpened, .incidentClosed]).filter { $0.target == target }
                    return records.filter { $0.kind == "incident-opened" }.count == records.filter { $0.kind == "incident-closed" }.count
                }
            }
        }
        await store.shutdown()
        return (times, failures)
    }

    struct Load {
        var requestsPerSecond: Double
        var cpu: Double
        var residentMiB: Double
        var detected: Double?
    }

    /// `simulated` hosts keeping their leases alive on one etcd member for 10 s, then one of them stopping.
    private func simulatedHosts() async throws -> Load {
        let etcd = try EtcdCluster(directory: try scratch("etcd-load"))
        defer { etcd.stop() }
        let store = try EtcdGateway(.init(endpoints: etcd.endpoints, timeout: .seconds(5)))
        let keys = FleetKeys(fleet: "load")
        let shared = KeepAlives()
        let count = simulated
        // Each simulated host as a real one: a lease, its registration under it, a keep-alive
        // every second, registered again if the lease was lost; started over one second.
        let keepers = Task {
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<count {
                    group.addTask {
                        try? await Task.sleep(for: .milliseconds(Int64(index * 1000 / max(1, count))))
                        var lease: Int64?
                        while !Task.isCancelled, shared.stopped.load(ordering: .relaxed) != index {
                            if let current = lease {
                                if (try? await store.keepAlive(current)) == nil { lease = nil }
                            } else if let granted = try? await store.grant(ttl: .seconds(3)) {
                                _ = try? await store.put(keys.host("sim\(index)"), Array(#"{"host":"sim\#(index)"}"#.utf8), lease: granted.id)
                                lease = granted.id
                            }
                            shared.requests.add(1, ordering: .relaxed)
                            try? await Task.sleep(for: .seconds(1))
                        }
                    }
                }
            }
        }
        defer { keepers.cancel() }
        guard await until(.seconds(30), { ((try? await store.range(keys.hosts, prefix: true).keys.count) ?? 0) == count }) else {
            throw TestHostError.setup("the \(count) simulated hosts did not all register")
        }
        guard let pid = etcd.members[0].pid, let before = ProcessCost(pid: pid) else { throw TestHostError.setup("etcd is gone") }
        let counted = shared.requests.load(ordering: .relaxed)
        let window: Duration = .seconds(10)
        let started = ContinuousClock.now
        try await Task.sleep(for: window)
        let seconds = Double((ContinuousClock.now - started).components.seconds) + Double((ContinuousClock.now - started).components.attoseconds) / 1e18
        let after = ProcessCost(pid: pid) ?? before
        let rate = Double(shared.requests.load(ordering: .relaxed) - counted) / seconds
        // One host stops: how long until a watcher (a client of its own, as another host's
        // medicd would be) sees its registration gone.
        let watcher = try EtcdGateway(.init(endpoints: etcd.endpoints))
        defer { Task { await watcher.shutdown() } }
        let (_, revision) = try await watcher.range(keys.hosts, prefix: true)
        let victim = simulated / 2
        let seen = Task { () -> ContinuousClock.Instant? in
            for try await batch in watcher.watch(prefix: keys.hosts, from: revision + 1) {
                if batch.contains(where: { if case .delete(let key, _) = $0 { key == keys.host("sim\(victim)") } else { false } }) { return .now }
            }
            return nil
        }
        try await Task.sleep(for: .milliseconds(200))
        let stoppedAt = ContinuousClock.now
        shared.stopped.store(victim, ordering: .relaxed)
        let gone = try? await withThrowingTaskGroup(of: ContinuousClock.Instant?.self) { group in
            group.addTask { try await seen.value }
            group.addTask {
                try await Task.sleep(for: .seconds(15))
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            seen.cancel()
            return first
        }
        await store.shutdown()
        return Load(
            requestsPerSecond: rate, cpu: (after.cpuSeconds - before.cpuSeconds) / seconds, residentMiB: after.residentMiB,
            detected: gone.map { Double(($0 - stoppedAt).components.seconds) * 1000 + Double(($0 - stoppedAt).components.attoseconds) / 1e15 })
    }

    /// What the simulated hosts share: keep-alives sent, and which host stopped sending them.
    private final class KeepAlives: Sendable {
        let requests = Atomic<Int>(0)
        let stopped = Atomic<Int>(-1)
    }

    private func scratch(_ name: String) throws -> String {
        var template = Array("/tmp/medic-compare-\(name).XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestHostError.setup("mkdtemp failed") }
        return String(cString: made)
    }

    /// Polls `condition` every 20 ms until it holds; whether it did within `timeout`.
    private func until(_ timeout: Duration, _ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }
}
