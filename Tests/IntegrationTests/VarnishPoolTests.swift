import Actions
import Foundation
import Glibc
import MedicCore
import TestHost
import Testing

@Suite("Varnish as a pool: its CLI spoken natively, against a real varnishd", .serialized, .timeLimit(.minutes(3)))
struct VarnishPoolTests {
    @Test("the CLI's authenticator is varnish-cli(7)'s example; the secret file's newline is part of it")
    func authenticator() {
        let challenge = "ixslvvxrgkjptxmcgnnsdxsvdmvfympg"
        #expect(VarnishCLI.authenticator(challenge: challenge, secret: Array("foo\n".utf8)) == "455ce847f0073c7ab3b1465f74507b75d3dc064c1e7de3b71e00de9092fdc89a")
        #expect(VarnishCLI.authenticator(challenge: challenge, secret: Array("foo".utf8)) != "455ce847f0073c7ab3b1465f74507b75d3dc064c1e7de3b71e00de9092fdc89a")
    }

    @Test("a director's backends are read with their health; one is forced sick and given back to its probe; the capacity guard keeps the last healthy one in")
    func pool() async throws {
        try await withVarnish { varnish in
            let web1 = PoolMembership(balancer: .varnish(cli: varnish.cli, secretFile: varnish.secret), backend: "app", server: "web1", capacity: PoolCapacity(share: 0, count: 1))
            var web2 = web1
            web2.server = "web2"
            let servers = try await VarnishPool().servers(of: web1)
            #expect(servers.map(\.name) == ["web1", "web2"] && servers.allSatisfy(\.inService), "\(servers)")
            let action = PoolAction(pool: Balancers())
            let out = await action.run(.maint, member: web1, timeout: .seconds(5))
            #expect(out.succeeded && out.summary.contains("app/web1 taken out of service"), "\(out)")
            #expect(try await varnish.backendHealth()["web1"]?.hasPrefix("MAINT") == true)
            // web2 is the last one serving: Varnish would answer 503 Backend Fetch Failed without it.
            let refused = await action.run(.maint, member: web2, timeout: .seconds(5))
            #expect(!refused.succeeded && refused.summary.contains("at least 1 must stay"), "\(refused)")
            #expect(try await varnish.backendHealth()["web2"]?.hasPrefix("MAINT") == false)
            let back = await action.run(.ready, member: web1, timeout: .seconds(5))
            #expect(back.succeeded && back.summary.contains("app/web1 returned to service"), "\(back)")
            let health = try await varnish.backendHealth()
            #expect(health["web1"] == "healthy", "\(health)")
            // A backend Medic did not set sick stays as the operator left it.
            try await varnish.command("backend.set_health web2 sick")
            let operators = await action.run(.ready, member: web2, timeout: .seconds(5))
            #expect(operators.summary.contains("Medic did not take it out"), "\(operators)")
            #expect(try await varnish.backendHealth()["web2"]?.hasPrefix("MAINT") == true)
        }
    }

    @Test("a vcl.use forgets the forced sick: the next read of the pool notices it and sets it again, and says so")
    func vclUse() async throws {
        try await withVarnish { varnish in try await checkVCLUse(varnish) }
    }

    private func checkVCLUse(_ varnish: Varnish) async throws {
        let web1 = PoolMembership(balancer: .varnish(cli: varnish.cli, secretFile: varnish.secret), backend: "app", server: "web1")
        var web2 = web1
        web2.server = "web2"
        let action = PoolAction(pool: Balancers())
        #expect(await action.run(.maint, member: web1, timeout: .seconds(5)).succeeded)
        try await varnish.command("vcl.load v2 \(varnish.directory)/default.vcl")
        try await varnish.command("vcl.use v2")
        let servers = try await VarnishPool().servers(of: web1)
        #expect(servers.first { $0.name == "web1" }?.admin == .ready, "the new VCL's web1 is not forced sick: \(servers)")
        let read = await action.run(.ready, member: web2, timeout: .seconds(5))
        #expect(read.succeeded, "\(read)")
        #expect(read.details["pool_reapplied"]?.contains("app/web1 (its instance in boot had been replaced by one in v2)") == true, "\(read)")
        #expect(try await VarnishPool().servers(of: web1).first { $0.name == "web1" }?.admin == .maint)
        // Given back by a person in the same VCL: Medic's next read leaves it so.
        try await varnish.command("backend.set_health web1 auto")
        let again = await action.run(.ready, member: web2, timeout: .seconds(5))
        #expect(again.details["pool_reapplied"] == nil, "\(again)")
        #expect(try await VarnishPool().servers(of: web1).first { $0.name == "web1" }?.admin == .ready)
    }

    @Test("a cache step bans in the Varnish in front of the target; the ban shows in ban.list; a ban Varnish refuses is a failed step with its words")
    func cacheBan() async throws {
        try await withVarnish { varnish in
            let web1 = PoolMembership(balancer: .varnish(cli: varnish.cli, secretFile: varnish.secret), backend: "app", server: "web1")
            let banned = await CacheAction().run(ban: "req.url ~ \"^/api/\"", members: [web1, web1])
            #expect(banned.succeeded && banned.summary == "banned req.url ~ \"^/api/\" at Varnish \(varnish.cli)", "\(banned)")
            #expect(banned.details["cache_ban"] == "req.url ~ \"^/api/\"")
            let bans = try await varnish.command("ban.list")
            #expect(bans.contains("req.url ~ ^/api/"), "\(bans)")
            let refused = await CacheAction().run(ban: "req.nosuch == 1", members: [web1])
            #expect(!refused.succeeded && refused.summary.contains("refused 'ban req.nosuch == 1' (status 106)"), "\(refused)")
            let haproxy = PoolMembership(balancer: .haproxy(socket: "/run/haproxy.sock"), backend: "app", server: "web1")
            #expect(await CacheAction().run(ban: "req.url ~ .", members: [haproxy]).summary.contains("behind no Varnish"))
        }
    }

    @Test("a wrong secret file is a failed step that names the authentication, not a hang; an unknown director is named")
    func refusals() async throws {
        try await withVarnish { varnish in
            let wrong = varnish.directory + "/wrong-secret"
            try Data("not the secret\n".utf8).write(to: URL(fileURLWithPath: wrong))
            let member = PoolMembership(balancer: .varnish(cli: varnish.cli, secretFile: wrong), backend: "app", server: "web1")
            let started = ContinuousClock.now
            let outcome = await PoolAction(pool: Balancers()).run(.maint, member: member, timeout: .seconds(5))
            #expect(!outcome.succeeded && outcome.summary.contains("refused the authentication with the secret file \(wrong)"), "\(outcome)")
            #expect(ContinuousClock.now - started < .seconds(3))
            var nowhere = member
            nowhere.balancer = .varnish(cli: varnish.cli, secretFile: varnish.secret)
            nowhere.backend = "shop"
            let unknown = await PoolAction(pool: Balancers()).run(.maint, member: nowhere, timeout: .seconds(5))
            #expect(unknown.summary.contains("has no director 'shop'"), "\(unknown)")
        }
    }

    /// Two backends, Varnish in front of them (both healthy when `body` starts); all stopped by PID.
    private func withVarnish(_ body: (Varnish) async throws -> Void) async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (backends, ports) = try startBackends(2, in: directory)
        defer { for backend in backends { _ = backend.stop() } }
        let varnish = try Varnish(directory: directory + "/varnish", backendPorts: ports)
        defer { varnish.stop() }
        try await varnish.ready()
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, (try? await varnish.backendHealth().values.allSatisfy { $0 == "healthy" }) != true {
            try await Task.sleep(for: .milliseconds(100))
        }
        try await body(varnish)
    }
}
