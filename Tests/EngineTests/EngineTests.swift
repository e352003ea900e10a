import Engine
import Foundation
import MedicCore
import Playbooks
import Simulation
import Testing

let crashRestart = """
    playbook: web
    targets:
      - unit: web@*.service
    guards:
      rate: { restart: 3 in 10m }
      backoff: { initial: 10s, max: 1m, reset_after: 5m }
      stabilise: 30s
    on:
      - when: crashed
        do:
          - restart
          - verify: { healthy: within 20s, for: 5s }
    """

@Suite("Engine on a virtual clock")
struct EngineTests {
    @Test("a crash opens an incident: observation → opened → intent → result → verify → closed after stabilising")
    func recordsInOrder() throws {
        let out = try simulate([try playbook(crashRestart)], crashes(count: 1, every: 0))
        #expect(out.map(\.record.kind) == [.observation, .incidentOpened, .stepIntent, .stepResult, .stepIntent, .stepResult, .incidentClosed])
        let closed = try #require(out.last)
        #expect(closed.record.details["outcome"] == "recovered")
        #expect(closed.at >= .seconds(30))
        #expect(out.dropFirst().allSatisfy { $0.record.incident == 1 })
    }

    @Test("a crash-looping unit is restarted exactly as often as its rate limit allows, then a human is called")
    func rateLimit() throws {
        let out = try simulate([try playbook(crashRestart)], crashes(count: 12, every: 20), horizon: .seconds(300))
        #expect(out.steps("restart").count == 3)
        #expect(out.of(.guardStopped).first?.record.message.contains("3 restarts of web@1.service in the last 10m already") == true)
        #expect(out.of(.escalation).contains { $0.record.message.contains("needs a human") && $0.record.message.contains("trying again every 10m") })
    }

    @Test("back-off doubles between attempts, and is forgiven after a long healthy period")
    func backoff() throws {
        let looping = try playbook(crashRestart.replacingOccurrences(of: "3 in 10m", with: "10 in 10m"))
        let out = try simulate([looping], crashes(count: 4, every: 8, start: 0))
        let waits = out.of(.decision).compactMap { $0.record.details["backoff_ms"] }.compactMap(Int.init)
        #expect(waits.count >= 2)
        #expect(zip(waits, waits.dropFirst()).allSatisfy { $1 > $0 }, "back-off grows: \(waits)")
        // After five healthy minutes the next crash is restarted at once again.
        let later = try simulate([looping], crashes(count: 3, every: 8) + "\n" + crashes(count: 1, every: 0, start: 900))
        let lastIncident = later.of(.incidentOpened).last!.at
        let restartAfter = later.steps("restart").last!.at
        #expect(restartAfter == lastIncident, "no back-off after a long healthy period")
    }

    @Test("a flapping unit stops automatic action and calls a human")
    func flapping() throws {
        let flappy = try playbook(crashRestart.replacingOccurrences(of: "stabilise: 30s", with: "stabilise: 30s\n  flap: 4 in 5m"))
        var timeline = ""
        for i in 0..<4 {
            timeline += #"{"at": "\#(i * 10)s", "target": "web@1.service", "event": "failed"}"# + "\n"
            timeline += #"{"at": "\#(i * 10 + 5)s", "target": "web@1.service", "event": "active"}"# + "\n"
        }
        timeline += crashes(count: 1, every: 0, start: 50)
        let out = try simulate([flappy], timeline)
        #expect(out.steps("restart").isEmpty)
        #expect(out.of(.guardStopped).first?.record.message.contains("flapping") == true)
        #expect(out.of(.escalation).last?.record.message.contains("stops until a human resumes it") == true)
    }

    @Test("a leak past its limit is restarted once: the replaced process's figures do not count against the new one")
    func limitRestartedOnce() throws {
        let book = try playbook("""
            playbook: leak
            targets: [ { unit: api.service } ]
            guards: { backoff: { initial: 10ms }, stabilise: 1s }
            on:
              - when: memory > 1GiB
                do: [ restart ]
            """)
        // The next sample, 5 s later, finds the new process small.
        let out = try simulate([book], """
            {"at": "0s", "target": "api.service", "event": "limit", "limit": "memory > 1GiB"}
            {"at": "5s", "target": "api.service", "event": "limit-cleared", "limit": "memory > 1GiB"}
            """, horizon: .seconds(60))
        #expect(out.steps("restart").count == 1, "\(out.messages)")
        let closed = try #require(out.of(.incidentClosed).first)
        #expect(closed.record.details["outcome"] == "recovered")
        #expect(closed.at < .seconds(5), "recovered once healthy for stabilise, before the next sample")
    }

    @Test("one incident per (target, trigger); steps on one target never overlap, and a queued step the first made needless is not run")
    func incidentsPerTrigger() throws {
        let book = try playbook("""
            playbook: cache
            targets: [ { unit: cache.service } ]
            on:
              - when: crashed
                do: [ restart ]
              - when: memory > 1GiB for 1m
                do: [ reload ]
            """)
        var core = EngineCore(playbooks: [book])
        let now = Simulator.epoch
        let leak = ResourceLimit(resource: .memory, comparison: .greater, threshold: 1_073_741_824, isPercentage: false, holdFor: .seconds(60))
        let first = core.observe(Observation(target: "cache.service", kind: .crashed(.signal), time: now, facts: [:], summary: "crashed"))
        let second = core.observe(Observation(target: "cache.service", kind: .limitExceeded(leak), time: now.adding(.milliseconds(1)), facts: [:], summary: "leak"))
        #expect(core.openIncidents.count == 2)
        let runs = (first + second).compactMap { if case .run(let token, let step, _) = $0 { (token, step.kind) } else { nil } }
        #expect(runs.map(\.1) == [.restart], "the reload waits for the restart")
        // The restart replaced the leaking process: the target is healthy, so the reload that
        // waited for it is not run.
        let after = core.stepFinished(token: runs[0].0, outcome: .success("done"), at: now.adding(.milliseconds(5)))
        #expect(!after.contains { if case .run(_, let step, _) = $0 { step.kind == .reload } else { false } })
        #expect(after.contains { if case .record(let r) = $0 { r.message.contains("reload is not run") } else { false } })
    }

    @Test("a paused target acts again once a human resumes it")
    func resume() throws {
        var core = EngineCore(playbooks: [try playbook(crashRestart.replacingOccurrences(of: "stabilise: 30s", with: "stabilise: 30s\n  flap: 2 in 5m"))])
        var now = Simulator.epoch
        func observe(_ state: String) -> [EngineCore.Command] {
            now = now.adding(.seconds(1))
            return core.observe(Observation(target: "web@1.service", kind: .stateChanged, time: now, facts: ["ActiveState": state], summary: state))
        }
        _ = observe("active"); _ = observe("failed"); _ = observe("active")
        now = now.adding(.seconds(1))
        let crash = core.observe(Observation(target: "web@1.service", kind: .crashed(.signal), time: now, facts: [:], summary: "crashed"))
        #expect(!crash.contains { if case .run(_, let step, _) = $0 { step.kind != .notify } else { false } }, "only a human is called")
        let resumed = core.resume("web@1.service", actor: "uid 0 (root)", at: now.adding(.seconds(60)))
        #expect(resumed.contains { if case .record(let r) = $0 { r.message.hasPrefix("resumed automatic action on web@1.service") && r.actor == "uid 0 (root)" } else { false } })
        #expect(resumed.contains { if case .run(_, let step, _) = $0 { step.kind == .restart } else { false } })
    }

    @Test("dry-run records what would be done and does nothing")
    func dryRun() throws {
        for out in [
            try simulate([try playbook(crashRestart)], crashes(count: 1, every: 0), dryRun: true),
            try simulate([try playbook("dry_run: true\n" + crashRestart)], crashes(count: 1, every: 0)),
        ] {
            #expect(out.of(.stepIntent).allSatisfy { $0.record.message.hasPrefix("dry-run: would") })
            #expect(out.of(.stepResult).allSatisfy { $0.record.details["result"] == "dry-run" })
            #expect(out.last?.record.details["outcome"] == "dry-run")
        }
    }

    @Test("an operator's stop is recorded and remediated by nobody")
    func operatorStop() throws {
        let out = try simulate([try playbook(crashRestart)], #"{"at": "0s", "target": "web@1.service", "event": "stopped", "job": "stop"}"#)
        #expect(out.of(.observation).count == 1)
        #expect(out.of(.incidentOpened).isEmpty)
        #expect(out.of(.stepIntent).isEmpty)
    }

    @Test("escalation climbs the ladder: each level once, the highest whose condition holds")
    func escalationLadder() throws {
        let laddered = try playbook("""
            playbook: api
            targets:
              - unit: api.service
            guards: { backoff: { initial: 1s }, rate: { restart: 10 in 10m } }
            receivers: { oncall: { journal: crit } }
            on:
              - when: crashed
                do: [ restart, { verify: { healthy: within 10s } } ]
                escalate:
                  - after: failure
                    do: [ { collect: { journal: 100 } } ]
                  - after: 3 failures in 10m
                    do: [ { notify: oncall } ]
            """)
        // Every restart fails: the ladder climbs, level by level, then a human is called.
        var timeline = (0..<4).map { _ in #"{"at": "0s", "target": "api.service", "fail": "restart"}"# }.joined(separator: "\n")
        timeline += "\n" + crashes("api.service", count: 1, every: 0)
        let out = try simulate([laddered], timeline, horizon: .seconds(120))
        let levels = out.of(.escalation).compactMap { $0.record.details["level"] }
        #expect(levels == ["1", "2"])
        #expect(out.of(.escalation).last?.record.message.contains("every escalation level ran") == true)
    }

    @Test("a dependency outage restarts none of its dependants; they go once it is back")
    func dependencies() throws {
        let app = try playbook("""
            playbook: app
            targets:
              - unit: app.service
                depends_on: [db.service]
              - unit: db.service
            guards: { stabilise: 5s }
            on:
              - when: crashed
                do: [ restart, { verify: { healthy: within 30s } } ]
            """)
        let timeline = """
            {"at": "0s", "target": "db.service", "event": "failed"}
            {"at": "0.5s", "target": "app.service", "event": "crashed", "kind": "exit-code"}
            {"at": "60s", "target": "db.service", "event": "active"}
            """
        let out = try simulate([app], timeline)
        let appRestarts = out.steps("restart").filter { $0.record.target == "app.service" }
        let stop = try #require(out.of(.guardStopped).first { $0.record.message.contains("depends on db.service, which is unhealthy") })
        // What it waits for, as facts (a post-mortem page draws the two incidents together).
        let dbIncident = out.of(.incidentOpened).first { $0.record.target == "db.service" }?.record.incident
        #expect(stop.record.details["waits_for"] == "db.service")
        #expect(stop.record.details["waits_for_incident"] == dbIncident.map { String($0) }, "\(stop.record.details)")
        #expect(appRestarts.count == 1)
        #expect(appRestarts.first.map { $0.at >= .seconds(60) } == true, "restarted only after db came back")
    }

    @Test("a storm across 4 of 10 targets holds the group and calls a human once")
    func storm() throws {
        let fleet = try playbook("""
            playbook: fleet
            targets:
            \((1...10).map { "  - unit: web\($0).service" }.joined(separator: "\n"))
            guards: { storm: 30% in 1m }
            on:
              - when: crashed
                do: [ restart ]
            """)
        let timeline = (1...4).map { #"{"at": "\#($0)s", "target": "web\#($0).service", "event": "crashed", "kind": "signal"}"# }.joined(separator: "\n")
        let out = try simulate([fleet], timeline, horizon: .seconds(30))
        #expect(out.steps("restart").count == 3, "three are restarted before the fourth makes it a storm")
        #expect(out.of(.escalation).filter { $0.record.message.hasPrefix("storm") }.count == 1)
        #expect(out.of(.guardStopped).contains { $0.record.message.contains("storm hold") })
    }

    @Test("a silence holds automatic action until it ends")
    func silence() throws {
        var simulator = Simulator(playbooks: [try playbook(crashRestart)])
        let end = Simulator.epoch.adding(.seconds(120))
        simulator.silence(Silence(pattern: "web@*.service", start: Simulator.epoch, end: end, reason: "deploy", author: "uid 0"))
        let out = simulator.run(try Timeline(jsonLines: crashes(count: 1, every: 0), base: Simulator.epoch))
        #expect(out.of(.guardStopped).first?.record.message.contains("silenced until") == true)
        #expect(out.steps("restart").first.map { $0.at >= .seconds(120) } == true)
    }

    @Test("a silence is a chained record; ending it lets the held step run at once; restored holds hold again")
    func silenceRecordedAndEnded() throws {
        let book = try playbook(crashRestart)
        var core = EngineCore(playbooks: [book])
        let now = Simulator.epoch
        let silence = Silence(pattern: "web@*.service", start: now, end: now.adding(.seconds(3600)), reason: "deploy", author: "uid 1000 (alice)")
        let set = core.silence(silence, at: now)
        let record = try #require(set.compactMap { if case .record(let r) = $0 { r } else { nil } }.first)
        #expect(record.kind == .silence && record.actor == "uid 1000 (alice)")
        #expect(Silence(pattern: try #require(record.target), details: record.details, author: record.actor, now: now) == silence)

        let crash = core.observe(Observation(target: "web@1.service", kind: .crashed(.signal), time: now.adding(.seconds(1)), facts: [:], summary: "crashed"))
        #expect(!crash.contains { if case .run(_, let step, _) = $0 { step.kind == .restart } else { false } })
        #expect(core.unsilence("db.service", actor: "uid 0", at: now.adding(.seconds(2))).ended == 0)
        let ended = core.unsilence("web@*.service", actor: "uid 0 (root)", at: now.adding(.seconds(2)))
        #expect(ended.ended == 1)
        #expect(ended.commands.contains { if case .record(let r) = $0 { r.kind == .silence && r.details["command"] == "unsilence" } else { false } })
        #expect(ended.commands.contains { if case .run(_, let step, _) = $0 { step.kind == .restart } else { false } }, "the held restart runs when the silence ends")

        // What a restarted daemon rebuilt from the chain holds as it did.
        var restored = EngineCore(playbooks: [book])
        restored.restoreHolds(silences: [silence], paused: ["db.service"])
        let again = restored.observe(Observation(target: "web@2.service", kind: .crashed(.signal), time: now.adding(.seconds(1)), facts: [:], summary: "crashed"))
        #expect(again.contains { if case .record(let r) = $0 { r.kind == .guardStopped && r.message.contains("silenced until") } else { false } })
        #expect(restored.report(at: now).silences.map(\.author) == ["uid 1000 (alice)"])
    }

    @Test("guard history restored after a daemon restart keeps the rate limit")
    func restoredHistory() throws {
        let book = try playbook(crashRestart)
        var core = EngineCore(playbooks: [book], firstIncidentID: 40)
        let now = Simulator.epoch
        core.restore(stepRuns: (1...3).map { ("web@1.service", StepKind.restart, now.adding(.seconds(-60 * $0))) }, failures: [])
        let commands = core.observe(Observation(target: "web@1.service", kind: .crashed(.signal), time: now, facts: [:], summary: "crashed"))
        let records = commands.compactMap { if case .record(let r) = $0 { r } else { nil } }
        #expect(records.first { $0.kind == .incidentOpened }?.incident == 40)
        #expect(!commands.contains { if case .run(_, let step, _) = $0 { step.kind == .restart } else { false } })
        #expect(records.contains { $0.kind == .guardStopped && $0.message.contains("3 restarts") })
    }
}
