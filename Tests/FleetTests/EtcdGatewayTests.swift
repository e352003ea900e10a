import Fleet
import Foundation
import Glibc
import MedicCore
import TestHost
import Synchronization
import Testing

@Suite("etcd through its JSON gateway: keys, leases, transactions, watches, auth and members lost", .serialized, .timeLimit(.minutes(5)))
struct EtcdGatewayTests {
    @Test("put, get, a prefix's range, create-if-absent and delete, with etcd's revisions")
    func keys() async throws {
        try await withEtcd("keys") { etcd in
            let store = try EtcdGateway(.init(endpoints: etcd.endpoints))
            let first = try await store.put("/medic/t/hosts/a", Array("A".utf8), lease: nil)
            try await store.put("/medic/t/hosts/b", Array("B".utf8), lease: nil)
            try await store.put("/medic/t/hostsX", Array("not under the prefix".utf8), lease: nil)
            #expect(try await store.get("/medic/t/hosts/a")?.text == "A")
            #expect(try await store.get("/medic/t/hosts/c") == nil)
            let (keys, revision) = try await store.range("/medic/t/hosts/", prefix: true)
            #expect(keys.map(\.key) == ["/medic/t/hosts/a", "/medic/t/hosts/b"] && revision >= first + 2)
            let created = try await store.create("/medic/t/lock", Array("me".utf8), lease: nil)
            #expect(created.created && created.now?.text == "me")
            let again = try await store.create("/medic/t/lock", Array("you".utf8), lease: nil)
            #expect(!again.created && again.now?.text == "me" && again.now?.createRevision == created.now?.createRevision)
            #expect(try await store.delete("/medic/t/hosts/", prefix: true) == 2)
            #expect(try await store.range("/medic/t/", prefix: true).keys.map(\.key) == ["/medic/t/hostsX", "/medic/t/lock"])
            await store.shutdown()
        }
    }

    @Test("a key under a lease lives while it is kept alive and goes when it is not; a keep-alive on the expired lease says it is lost")
    func leases() async throws {
        try await withEtcd("leases") { etcd in
            let store = try EtcdGateway(.init(endpoints: etcd.endpoints))
            let lease = try await store.grant(ttl: .seconds(2))
            #expect(lease.ttl == .seconds(2))
            try await store.put("/medic/t/hosts/a", Array("A".utf8), lease: lease.id)
            #expect(try await store.get("/medic/t/hosts/a")?.lease == lease.id)
            for _ in 0..<4 {
                try await Task.sleep(for: .milliseconds(700))
                #expect(try await store.keepAlive(lease.id) == .seconds(2))
            }
            #expect(try await store.get("/medic/t/hosts/a") != nil, "kept alive for 2.8 s, past its 2 s TTL")
            #expect(await eventually(timeout: .seconds(5)) { ((try? await store.get("/medic/t/hosts/a")) ?? nil) == nil })
            #expect(try await store.keepAlive(lease.id) == nil)
            await #expect(throws: FleetStoreError.self) { try await store.put("/medic/t/x", [], lease: lease.id) }
            await store.shutdown()
        }
    }

    @Test("a watch from a revision sees puts, deletes and a lease's expiry, in order")
    func watch() async throws {
        try await withEtcd("watch") { etcd in
            let store = try EtcdGateway(.init(endpoints: etcd.endpoints))
            let start = try await store.put("/medic/t/hosts/a", Array("A".utf8), lease: nil)
            let lease = try await store.grant(ttl: .seconds(1))
            try await store.put("/medic/t/hosts/b", Array("B".utf8), lease: lease.id)
            var events = store.watch(prefix: "/medic/t/hosts/", from: start).makeAsyncIterator()
            var seen: [String] = []
            while seen.count < 3, let batch = try await events.next() {
                for event in batch {
                    switch event {
                    case .put(let kv): seen.append("put \(kv.key)")
                    case .delete(let key, _): seen.append("delete \(key)")
                    }
                }
            }
            #expect(seen == ["put /medic/t/hosts/a", "put /medic/t/hosts/b", "delete /medic/t/hosts/b"])
            await store.shutdown()
        }
    }

    @Test("with auth on: a host's user writes its own keys, is refused another's, and gets a new token when its own expires")
    func auth() async throws {
        try await withEtcd("auth", extra: ["--auth-token", "simple", "--auth-token-ttl", "1"]) { etcd in
            try etcd.ctl(["user", "add", "root:rootpw"])
            try etcd.ctl(["user", "add", "host-a:apw"])
            try etcd.ctl(["role", "add", "host-a"])
            try etcd.ctl(["role", "grant-permission", "host-a", "readwrite", "/medic/t/hosts/a"])
            try etcd.ctl(["role", "grant-permission", "host-a", "read", "--prefix=true", "/medic/t/"])
            try etcd.ctl(["user", "grant-role", "host-a", "host-a"])
            try etcd.ctl(["auth", "enable"])
            let a = try EtcdGateway(.init(endpoints: etcd.endpoints, user: ("host-a", "apw")))
            try await a.put("/medic/t/hosts/a", Array("A".utf8), lease: nil)
            await #expect {
                try await a.put("/medic/t/hosts/b", Array("forged".utf8), lease: nil)
            } throws: { ($0 as? FleetStoreError)?.kind == .denied }
            // The simple token lives 1 s: past it, the next request authenticates again.
            try await Task.sleep(for: .seconds(3))
            #expect(try await a.get("/medic/t/hosts/a")?.text == "A")
            let wrong = try EtcdGateway(.init(endpoints: etcd.endpoints, user: ("host-a", "nope")))
            await #expect {
                _ = try await wrong.get("/medic/t/hosts/a")
            } throws: { ($0 as? FleetStoreError)?.kind == .denied }
            await a.shutdown()
            await wrong.shutdown()
        }
    }

    @Test("scripts/fleet-bootstrap: each host's user writes its registration, verdicts, locks and the fleet's shared keys, reads the fleet, and is refused another host's keys")
    func bootstrap() async throws {
        try await withEtcd("bootstrap") { etcd in
            let out = try scratch("bootstrap-out")
            defer { try? FileManager.default.removeItem(atPath: out) }
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("scripts/fleet-bootstrap").path
            let output = try runProgram(script, ["web", out, "a", "b"], environment: ["ETCDCTL_ENDPOINTS": etcd.endpoints.joined(separator: ","), "PATH": "/usr/bin:/bin"])
            #expect(output.contains("host a: etcd user host-a"), "\(output)")
            var info = stat()
            #expect(stat(out + "/a.password", &info) == 0 && info.st_mode & 0o777 == 0o600)
            let password = { (host: String) in (try? String(contentsOfFile: out + "/\(host).password", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "" }
            let a = try EtcdGateway(.init(endpoints: etcd.endpoints, user: ("host-a", password("a"))))
            let lease = try await a.grant(ttl: .seconds(10))
            try await a.put("/medic/web/hosts/a", Array("A".utf8), lease: lease.id)
            try await a.put("/medic/web/verdicts/a/b", Array("verdict".utf8), lease: lease.id)
            #expect(try await a.create("/medic/web/locks/b/a", Array("a".utf8), lease: lease.id).created)
            #expect(try await a.range("/medic/web/", prefix: true).keys.count == 3)
            // The fleet's shared keys: a budget slot, a server taken out for a lost peer, a
            // record of it for that peer.
            let fleet = FleetConfig(name: "web", host: "a", address: "127.0.0.1:1", endpoints: etcd.endpoints)
            guard case .granted = await BudgetSlots(store: a, fleet: fleet).acquire(FleetBudget(name: "reboot", slots: 1, wait: .seconds(1)), incident: 1, target: "web.service")
            else { Issue.record("host a cannot take a budget slot"); return }
            let holds = PoolHolds(store: a, fleet: fleet)
            await holds.taken("/run/haproxy.sock web/b1", of: "b", incident: 2, fencingToken: "9")
            #expect(await holds.isHeld("/run/haproxy.sock web/b1", of: "b") == true)
            await PeerActs(store: a, fleet: fleet).tell("b", AuditRecord(kind: .stepResult, target: "host/b", message: "b1 out"), seq: 5)
            #expect(try await a.range("/medic/web/done/b/", prefix: true).keys.count == 1)
            for forged in ["/medic/web/hosts/b", "/medic/web/verdicts/b/a", "/medic/other/hosts/a"] {
                await #expect(Comment(rawValue: forged)) {
                    try await a.put(forged, Array("forged".utf8), lease: nil)
                } throws: { ($0 as? FleetStoreError)?.kind == .denied }
            }
            let anonymous = try EtcdGateway(.init(endpoints: etcd.endpoints))
            await #expect { _ = try await anonymous.get("/medic/web/hosts/a") } throws: { ($0 as? FleetStoreError)?.kind == .denied }
            await a.shutdown()
            await anonymous.shutdown()
        }
    }

    @Test("over TLS with client certificates: a client with a certificate the CA signed is served; one without is refused")
    func tls() async throws {
        let pki = try scratch("pki")
        defer { try? FileManager.default.removeItem(atPath: pki) }
        let openssl = { (arguments: [String]) throws in try runProgram("/usr/bin/openssl", arguments) }
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=medic-test-ca", "-keyout", pki + "/ca.key", "-out", pki + "/ca.pem"])
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: pki + "/san.ext", atomically: true, encoding: .utf8)
        for name in ["server", "client"] {
            try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=\(name)", "-keyout", pki + "/\(name).key", "-out", pki + "/\(name).csr"])
            try openssl(["x509", "-req", "-in", pki + "/\(name).csr", "-CA", pki + "/ca.pem", "-CAkey", pki + "/ca.key", "-CAcreateserial", "-days", "1",
                         "-extfile", pki + "/san.ext", "-out", pki + "/\(name).pem"])
        }
        try await withEtcd("tls", scheme: "https", extra: [
            "--cert-file", pki + "/server.pem", "--key-file", pki + "/server.key", "--client-cert-auth", "--trusted-ca-file", pki + "/ca.pem",
        ]) { etcd in
            let client = try EtcdGateway(.init(endpoints: etcd.endpoints, caFile: pki + "/ca.pem", certificateFile: pki + "/client.pem", keyFile: pki + "/client.key"))
            #expect(await eventually(timeout: .seconds(10)) { (try? await client.put("/medic/t/hosts/a", Array("A".utf8), lease: nil)) != nil })
            #expect(try await client.get("/medic/t/hosts/a")?.text == "A")
            let stranger = try EtcdGateway(.init(endpoints: etcd.endpoints, caFile: pki + "/ca.pem"))
            await #expect(throws: FleetStoreError.self) { _ = try await stranger.get("/medic/t/hosts/a") }
            await client.shutdown()
            await stranger.shutdown()
        }
    }

    @Test("three members: a dead endpoint is skipped, and writes go on when the leader is killed")
    func leaderLoss() async throws {
        try await withEtcd("cluster", size: 3) { etcd in
            let store = try EtcdGateway(.init(endpoints: ["http://127.0.0.1:1"] + etcd.endpoints))
            try await store.put("/medic/t/before", Array("1".utf8), lease: nil)
            let leader = try #require(etcd.members.first { $0.endpoint == (try? etcd.leaderEndpoint()) })
            leader.stop()
            #expect(await eventually(timeout: .seconds(10)) { (try? await store.put("/medic/t/after", Array("2".utf8), lease: nil)) != nil })
            #expect(try await store.get("/medic/t/after")?.text == "2")
            await store.shutdown()
        }
    }

    @Test("a watch on a member that freezes ends, with an error, as soon as a request to that member goes unanswered; a new watch from its revision misses nothing")
    func watchOnFrozenMember() async throws {
        try await withEtcd("frozen-watch", size: 3) { etcd in
            let leader = try etcd.leaderEndpoint()
            let frozen = try #require(etcd.members.first { $0.endpoint != leader })
            let store = try EtcdGateway(.init(endpoints: [frozen.endpoint] + etcd.endpoints.filter { $0 != frozen.endpoint }, timeout: .seconds(1)))
            let start = try await store.put("/medic/t/w/a", Array("1".utf8), lease: nil)
            let ended = Mutex<String?>(nil)
            let reader = Task {
                do {
                    for try await _ in store.watch(prefix: "/medic/t/w/", from: start + 1) {}
                    ended.withLock { $0 = "ended without an error" }
                } catch {
                    ended.withLock { $0 = "\(error)" }
                }
            }
            defer { reader.cancel() }
            try await Task.sleep(for: .milliseconds(300))
            frozen.freeze()
            defer { frozen.thaw() }
            let written = try await store.put("/medic/t/w/b", Array("2".utf8), lease: nil)
            #expect(await eventually(timeout: .seconds(3)) { ended.withLock { $0 } != nil })
            #expect(ended.withLock { $0 }?.contains("the watch's member stopped answering") == true, "\(ended.withLock { $0 } ?? "still watching")")
            var seen: [WatchEvent] = []
            for try await batch in store.watch(prefix: "/medic/t/w/", from: start + 1) {
                seen += batch
                break
            }
            #expect(seen.contains { if case .put(let key) = $0 { key.key == "/medic/t/w/b" && key.modRevision == written } else { false } }, "\(seen)")
            await store.shutdown()
        }
    }

    @Test("a member that stops mid-answer (head sent, body never finished) costs one timeout, then the next member answers")
    func stalledAnswer() async throws {
        try await withEtcd("stalled") { etcd in
            let stalling = try StallingMember()
            defer { stalling.stop() }
            let store = try EtcdGateway(.init(endpoints: [stalling.endpoint] + etcd.endpoints, timeout: .seconds(1)))
            let started = ContinuousClock.now
            try await store.put("/medic/t/key", Array("1".utf8), lease: nil)
            let took = ContinuousClock.now - started
            #expect(took < .seconds(3), "the put took \(took)")
            #expect(try await store.get("/medic/t/key")?.text == "1")
            await store.shutdown()
        }
    }

    @Test("three members: one frozen mid-conversation costs one timeout per request, then the next member answers; it is never waited on for ever")
    func frozenMember() async throws {
        try await withEtcd("frozen", size: 3) { etcd in
            let leader = try etcd.leaderEndpoint()
            let frozen = try #require(etcd.members.first { $0.endpoint != leader })
            let store = try EtcdGateway(.init(endpoints: [frozen.endpoint] + etcd.endpoints.filter { $0 != frozen.endpoint }, timeout: .seconds(1)))
            // A connection to it is open and idle when it freezes: the next request goes out on it.
            try await store.put("/medic/t/before", Array("1".utf8), lease: nil)
            frozen.freeze()
            defer { frozen.thaw() }
            let started = ContinuousClock.now
            try await store.put("/medic/t/during", Array("2".utf8), lease: nil)
            let took = ContinuousClock.now - started
            #expect(took < .seconds(5), "the put took \(took)")
            #expect(try await store.get("/medic/t/during")?.text == "2")
            await store.shutdown()
        }
    }
}
