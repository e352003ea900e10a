import Engine
import MedicCore
import Simulation
import Testing

/// "Never make an outage worse": the guards that hold for globs, dependencies, holds that lapse,
/// interrupted plans, pools short of capacity and restarts that need fresh evidence.
@Suite("Guards that never make an outage worse")
struct OutageGuardTests {
    /// `count` units named `PREFIX@N.service`, each seen active at `at`.
    func active(_ prefix: String, _ numbers: ClosedRange<Int>, at: Double = 0) -> String {
        numbers.map { #"{"at": "\#(at)s", "target": "\#(prefix)@\#($0).service", "event": "active"}"# }.joined(separator: "\n")
    }

    func crash(_ unit: String, at: Double) -> String {
        #"{"at": "\#(at)s", "target": "\#(unit)", "event": "crashed", "kind": "signal"}"#
    }

    let globPlaybook = """
        playbook: acc
        targets: [ { unit: "acc@*.service" } ]
        guards: { storm: 30% in 1m, stabilise: 5s }
        on:
          - when: crashed
            do: [ restart ]
        """

    @Test("a glob's storm group is every unit it watches: 3 of 10 crashing is no storm, 4 of 10 is")
    func globStormGroup() throws {
        let book = try playbook(globPlaybook)
        let three = [active("acc", 1...10), crash("acc@1.service", at: 1), crash("acc@2.service", at: 2), crash("acc@3.service", at: 3)]
        let out = try simulate([book], three.joined(separator: "\n"), horizon: .seconds(120))
        #expect(out.steps("restart").count == 3, "\(out.messages)")
        #expect(!out.messages.contains { $0.hasPrefix("storm") }, "3 of 10 (30%) is not more than 30%")
        let four = try simulate([book], (three + [crash("acc@4.service", at: 4)]).joined(separator: "\n"), horizon: .seconds(120))
        #expect(four.of(.escalation).contains { $0.record.message.hasPrefix("storm: 4 of 10 targets") }, "\(four.messages)")
    }

    @Test("a held step is not run when its hold lapses on a target that is healthy again: closed as recovered by itself")
    func holdLapsesOnHealthyTarget() throws {
        let book = try playbook(globPlaybook)
        var timeline = [active("acc", 1...10)]
        timeline += (1...4).map { crash("acc@\($0).service", at: Double($0)) }
        // The held unit comes back by itself (systemd's own Restart=, say) while the storm lasts.
        timeline.append(#"{"at": "10s", "target": "acc@4.service", "event": "active"}"#)
        let out = try simulate([book], timeline.joined(separator: "\n"), horizon: .seconds(180))
        #expect(out.of(.guardStopped).contains { $0.record.target == "acc@4.service" && $0.record.message.contains("storm hold") })
        #expect(!out.steps("restart").contains { $0.record.target == "acc@4.service" }, "\(out.messages)")
        let closed = try #require(out.of(.incidentClosed).first { $0.record.target == "acc@4.service" })
        #expect(closed.record.details["outcome"] == "recovered-by-itself")
        #expect(out.of(.decision).contains { $0.record.target == "acc@4.service" && $0.record.message.contains("restart is not run") })
    }

    @Test("a held step on a target still down runs when the hold lapses")
    func holdLapsesOnDownTarget() throws {
        let out = try simulate([try playbook(globPlaybook)], ([active("acc", 1...10)] + (1...4).map { crash("acc@\($0).service", at: Double($0)) }).joined(separator: "\n"))
        let held = try #require(out.steps("restart").first { $0.record.target == "acc@4.service" })
        #expect(held.at >= .seconds(60), "run once the storm window passed")
    }

    let dependants = """
        playbook: app
        targets:
          - unit: app1.service
            depends_on: [db.service]
          - unit: app2.service
            depends_on: [db.service]
          - unit: db.service
        guards: { stabilise: 5s, settle: 5s }
        on:
          - when: crashed
            do: [ restart, { verify: { healthy: within 30s } } ]
        """

    @Test("victims of a dependency get a settle period once it is back; only those still down are restarted")
    func dependencySettle() throws {
        let timeline = """
            {"at": "0s", "target": "db.service", "event": "failed"}
            {"at": "0.5s", "target": "app1.service", "event": "crashed", "kind": "exit-code"}
            {"at": "0.6s", "target": "app2.service", "event": "crashed", "kind": "exit-code"}
            {"at": "60s", "target": "db.service", "event": "active"}
            {"at": "62s", "target": "app1.service", "event": "active"}
            """
        let out = try simulate([try playbook(dependants)], timeline)
        let restarts = out.steps("restart")
        #expect(!restarts.contains { $0.record.target == "app1.service" }, "app1 came back by itself within the settle period")
        let app2 = try #require(restarts.first { $0.record.target == "app2.service" })
        #expect(app2.at >= .seconds(65), "restarted only after the settle period: \(app2.at)")
        #expect(out.of(.decision).contains { $0.record.message.contains("has 5s to recover by itself") })
        #expect(out.of(.incidentClosed).first { $0.record.target == "app1.service" }?.record.details["outcome"] == "recovered-by-itself")
    }

    @Test("without settle:, a victim with a probe gets its probe's window to recover")
    func settleFromProbe() throws {
        let book = try playbook("""
            playbook: app
            targets:
              - unit: app.service
                depends_on: [db.service]
                probe: { http: "http://127.0.0.1:8081/health", every: 2s, timeout: 1s, successes: 3 }
            on:
              - when: crashed
                do: [ restart ]
            """)
        var core = EngineCore(playbooks: [book])
        let now = Simulator.epoch
        _ = core.observe(Observation(target: "db.service", kind: .stateChanged, time: now, facts: ["ActiveState": "failed"], summary: "failed"))
        _ = core.observe(Observation(target: "app.service", kind: .crashed(.exitCode), time: now, facts: ["ActiveState": "failed"], summary: "crashed"))
        let back = core.observe(Observation(target: "db.service", kind: .stateChanged, time: now.adding(.seconds(10)), facts: ["ActiveState": "active"], summary: "active"))
        let wake = back.compactMap { if case .wake(_, let at) = $0 { at } else { nil } }.first
        #expect(wake == now.adding(.seconds(17)), "2s × 3 successes + 1s timeout after the db is back")
    }

    @Test("a taken-up incident whose unit has failed is judged at once, and a human is called when no escalation is left")
    func takenUpJudgedAtOnce() throws {
        let book = try playbook("""
            playbook: api
            targets: [ { unit: api.service } ]
            guards: { rate: { restart: 1 in 10m } }
            on:
              - when: crashed
                do: [ restart, { verify: { healthy: within 20s } } ]
            """)
        var core = EngineCore(playbooks: [book], firstIncidentID: 7)
        let now = Simulator.epoch
        let registered = core.register(incident: 7, target: "api.service", playbook: "api", trigger: "crashed", at: now)
        #expect(registered)
        core.restore(stepRuns: [("api.service", .restart, now.adding(.seconds(-3)))], failures: [])
        // What the first read of the target finds joins the taken-up incident.
        let read = core.observe(Observation(target: "api.service", kind: .crashed(.exitCode), time: now, facts: ["ActiveState": "failed"], summary: "exited 1"))
        #expect(!read.contains { if case .record(let r) = $0 { r.kind == .incidentOpened } else { false } }, "one incident per (target, rule), across medicds")
        let adopted = core.adopt(incident: 7, target: "api.service", playbook: "api", trigger: "crashed", why: "from the medicd before this one", at: now.adding(.milliseconds(5)))
        let records = adopted.compactMap { if case .record(let r) = $0 { r } else { nil } }
        #expect(records.contains { $0.kind == .stepResult && $0.message.hasPrefix("verify failed: api.service is failed") }, "\(records.map(\.message))")
        // The next attempt, after its back-off, meets the rate limit: no escalation is left, so a
        // human is called.
        let backoff = try #require(adopted.lazy.compactMap { if case .wake(let token, let at) = $0 { (token, at) } else { nil } }.first)
        let next = core.wake(token: backoff.0, at: backoff.1)
        #expect(next.contains { if case .record(let r) = $0 { r.kind == .escalation && r.message.contains("needs a human") } else { false } })
        let page = next.compactMap { if case .run(_, let step, _) = $0 { step } else { nil } }
        #expect(page == [Step(.notify(recipient: "journal:crit", message: page.first.flatMap { if case .notify(_, let m) = $0.action { m } else { nil } }))])
        #expect(core.openIncidents.count == 1)
    }

    @Test("a failing unit under verification is judged when it fails, not at the deadline")
    func verifyJudgedOnFailure() throws {
        let book = try playbook("""
            playbook: api
            targets: [ { unit: api.service } ]
            on:
              - when: crashed
                do: [ restart, { verify: { healthy: within 60s, for: 10s } } ]
            """)
        let out = try simulate([book], """
            {"at": "0s", "target": "api.service", "event": "crashed", "kind": "signal"}
            {"at": "2s", "target": "api.service", "event": "failed"}
            """, horizon: .seconds(5))
        let failed = try #require(out.of(.stepResult).first { $0.record.message.hasPrefix("verify failed") })
        #expect(failed.at == .seconds(2))
    }

    let poolPlaybook = """
        playbook: web
        targets:
          - unit: web@1.service
            pool: { haproxy: /run/haproxy/admin.sock, backend: web, server: web1 }
            probe: { http: "http://127.0.0.1:8081/health" }
          - unit: web@2.service
            pool: { haproxy: /run/haproxy/admin.sock, backend: web, server: web2 }
            probe: { http: "http://127.0.0.1:8082/health" }
        on:
          - when: crashed or unhealthy
            do: [ { pool: maint }, restart, { pool: ready } ]
        """

    /// Runs the engine until its first `.run`, and returns the run's token and step.
    func firstRun(_ commands: [EngineCore.Command]) -> (token: Int, step: Step, context: StepContext)? {
        commands.lazy.compactMap { if case .run(let token, let step, let context) = $0 { (token, step, context) } else { nil } }.first
    }

    @Test("a pool step refused for capacity holds the plan until capacity returns, and a down unit is started anyway")
    func capacityHold() throws {
        var core = EngineCore(playbooks: [try playbook(poolPlaybook)])
        let now = Simulator.epoch
        // web@2 hangs (its unit is up, its probe fails): its pool step is refused and held, not failed.
        _ = core.observe(Observation(target: "web@2.service", kind: .stateChanged, time: now, facts: ["ActiveState": "active"], summary: "active"))
        let hung = try #require(firstRun(core.observe(Observation(target: "web@2.service", kind: .unhealthy, time: now, facts: [:], summary: "probe failing"))))
        #expect(hung.context.unitDown == false)
        let refused = core.stepFinished(token: hung.token, outcome: .refused(by: "capacity", "would leave 0 of 2"), at: now.adding(.milliseconds(2)))
        #expect(!refused.contains { if case .record(let r) = $0 { r.message.hasPrefix("plan failed") } else { false } })
        #expect(core.report(at: now).incidents.first?.phase.contains("held") == true)
        // web@1 crashes: its unit is down, so its pool step is asked with unitDown, and a pool
        // step it could not do never stops its restart.
        let crashed = core.observe(Observation(target: "web@1.service", kind: .crashed(.signal), time: now.adding(.seconds(1)), facts: ["ActiveState": "failed"], summary: "killed"))
        let out = try #require(firstRun(crashed))
        #expect(out.context.unitDown)
        let failed = core.stepFinished(token: out.token, outcome: .failure("HAProxy unreachable"), at: now.adding(.seconds(1)))
        let restart = try #require(firstRun(failed))
        #expect(restart.step.kind == .restart)
        // web@1 returned to the pool: the held step of web@2 is tried again at once.
        let up = core.stepFinished(token: restart.token, outcome: .success("active"), at: now.adding(.seconds(2)))
        let ready = try #require(firstRun(up))
        #expect(ready.context.target == "web@1.service" && ready.step.action == .pool(.ready))
        let returned = core.stepFinished(token: ready.token, outcome: .success("returned"), at: now.adding(.seconds(2)))
        let retried = try #require(firstRun(returned))
        #expect(retried.context.target == "web@2.service" && retried.step.action == .pool(.maint), "\(retried.step)")
    }

    let probed = """
        playbook: web
        targets:
          - unit: web.service
            probe: { http: "http://127.0.0.1:8081/health", every: 200ms, timeout: 100ms, successes: 2 }
        guards: { stabilise: 1s }
        on:
          - when: crashed
            do: [ restart, { verify: { healthy: within 10s } } ]
        """

    @Test("after a restart, a probe's pass from before the crash does not count: healthy needs a probe begun since")
    func freshEvidence() throws {
        var core = EngineCore(playbooks: [try playbook(probed)])
        let now = Simulator.epoch
        _ = core.observe(Observation(target: "web.service", kind: .healthy, time: now, occurred: now, facts: [:], summary: "passing"))
        let crashed = core.observe(Observation(target: "web.service", kind: .crashed(.signal), time: now.adding(.seconds(1)), facts: ["ActiveState": "failed"], summary: "killed"))
        let restart = try #require(firstRun(crashed))
        let restarted = core.stepFinished(token: restart.token, outcome: .success("active"), at: now.adding(.milliseconds(1030)))
        let recordsAfterRestart = restarted.compactMap { if case .record(let r) = $0 { r } else { nil } }
        #expect(!recordsAfterRestart.contains { $0.message.hasPrefix("verify succeeded") }, "the probe has not spoken of the new process")
        // A pass of a probe begun before the restart still says nothing of the new process.
        let stale = core.observe(Observation(target: "web.service", kind: .healthy, time: now.adding(.milliseconds(1100)), occurred: now.adding(.milliseconds(900)), facts: [:], summary: "passing"))
        #expect(!stale.contains { if case .record(let r) = $0 { r.message.hasPrefix("verify succeeded") } else { false } })
        let fresh = core.observe(Observation(target: "web.service", kind: .healthy, time: now.adding(.seconds(3)), occurred: now.adding(.milliseconds(2800)), facts: [:], summary: "passing"))
        #expect(fresh.contains { if case .record(let r) = $0 { r.message.hasPrefix("verify succeeded") } else { false } })
    }

    @Test("time to recover ends when the target was healthy again; the stabilisation period is reported beside it")
    func honestTimeToRecover() throws {
        let out = try simulate([try playbook(probed)], #"{"at": "0s", "target": "web.service", "event": "crashed", "kind": "signal"}"#)
        let closed = try #require(out.of(.incidentClosed).first)
        let ttr = try #require(closed.record.details["time_to_recover_ms"].flatMap(Int.init))
        #expect(ttr < 1000, "healthy again on the probe's second fresh pass, 0.4 s after the restart: \(ttr) ms")
        #expect(closed.record.details["stabilised_ms"] == "1000")
        #expect(closed.record.details["healthy_at"] != nil)
    }

    @Test("a storm calls the playbook's people once")
    func stormPages() throws {
        let book = try playbook(globPlaybook + "\nreceivers: { default: { journal: alert } }")
        let timeline = ([active("acc", 1...5)] + (1...5).map { crash("acc@\($0).service", at: Double($0)) }).joined(separator: "\n")
        let out = try simulate([book], timeline, horizon: .seconds(30))
        let pages = out.steps("notify").filter { $0.record.message.contains("storm") }
        #expect(pages.count == 1, "\(out.messages)")
        #expect(pages.first?.record.message.contains("notify default") == true)
    }

    @Test("a rate in guards and a reboot step's at_most: the stricter holds")
    func stricterRebootLimit() throws {
        let book = try playbook("""
            playbook: host
            targets: [ { unit: api.service } ]
            guards: { rate: { reboot: 1 in 1d }, backoff: { initial: 1s } }
            on:
              - when: crashed
                do: [ { reboot: { at_most: 2 in 6h } } ]
            """)
        let out = try simulate([book], crashes("api.service", count: 2, every: 3600), horizon: .seconds(60))
        #expect(out.steps("reboot").count == 1, "\(out.messages)")
        #expect(out.of(.guardStopped).contains { $0.record.message.contains("1 reboots of this host in the last 1d") })
    }
}
