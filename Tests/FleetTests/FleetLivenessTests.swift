import Fleet
import Foundation
import MedicCore
import Synchronization
import TestHost
import Testing

/// Observations delivered by a detector, kept for a test to read.
private final class Delivered: Sendable {
    private let list = Mutex<[Observation]>([])
    func add(_ observation: Observation) { list.withLock { $0.append(observation) } }
    var all: [Observation] { list.withLock { $0 } }
}

@Suite("Fleet liveness on a real etcd, without daemons", .serialized, .timeLimit(.minutes(5)))
struct FleetLivenessTests {
    private func fleet(_ host: String) -> FleetConfig {
        var config = FleetConfig(name: "t", host: host, address: "127.0.0.1:\(freePort())", endpoints: [])
        config.leaseTTL = .seconds(2)
        config.keepAlive = .milliseconds(500)
        config.aloneGrace = .seconds(1)
        return config
    }

    @Test("a verdict replayed from an older loss counts for nothing: alone, the lost host is down only after the grace, and the evidence says so")
    func replayedVerdict() async throws {
        try await withEtcd("replay") { etcd in
            let store = try EtcdGateway(.init(endpoints: etcd.endpoints))
            let keys = FleetKeys(fleet: "t")
            var me = fleet("a")
            me.endpoints = etcd.endpoints
            // b will die (its address answers nothing); c is registered but never probes.
            let bLease = try await store.grant(ttl: .seconds(2))
            let b = Registration(host: "b", address: "127.0.0.1:\(freePort())", servers: [.init(PoolMembership(haproxy: "/run/h.sock", backend: "app", server: "s2"))], since: "then")
            try await store.put(keys.host("b"), Array(try JSONEncoder().encode(b)), lease: bLease.id)
            let cLease = try await store.grant(ttl: .seconds(60))
            let c = Registration(host: "c", address: "127.0.0.1:\(freePort())", servers: [], since: "then")
            try await store.put(keys.host("c"), Array(try JSONEncoder().encode(c)), lease: cLease.id)
            // A verdict of c's from an earlier loss of b, saying b was reachable: a replay.
            let stale = Verdict(peer: "c", lost: "b", loss: 1, reachable: true, detail: "an old answer")
            try await store.put(keys.verdict(by: "c", on: "b"), Array(try JSONEncoder().encode(stale)), lease: cLease.id)

            let lease = CurrentLease()
            let member = FleetMember(store: store, fleet: me, servers: [], lease: lease)
            let membership = Task { await member.run { _ in } }
            let liveness = FleetLiveness(store: store, fleet: me, lease: lease, corroboration: .milliseconds(500))
            let delivered = Delivered()
            let watching = Task { try await liveness.run { delivered.add($0) } }
            defer {
                watching.cancel()
                membership.cancel()
            }
            // b's lease is not kept alive: it expires after 2 s.
            let decided = await eventually(timeout: .seconds(15)) { delivered.all.contains { $0.kind == .hostDown || $0.kind == .hostIsolated } }
            #expect(decided, "\(delivered.all.map(\.summary))")
            let decision = try #require(delivered.all.first { $0.kind == .hostDown || $0.kind == .hostIsolated })
            #expect(decision.kind == .hostDown && decision.target == "host/b")
            #expect(decision.pools == [PoolMembership(haproxy: "/run/h.sock", backend: "app", server: "s2")])
            #expect(decision.facts["verdicts"]?.contains("c:") == false, "the replayed verdict is not evidence: \(decision.facts)")
            #expect(decision.facts["verdicts"]?.contains("after 1s alone: unreachable") == true, "\(decision.facts)")
            #expect(delivered.all.contains { $0.kind == .fleetNote && $0.summary.contains("fewer than two peers") })
            #expect(decision.facts["acting_host"] == "a" && Int(decision.facts["fencing_token"] ?? "") != nil)
            await store.shutdown()
        }
    }
}
