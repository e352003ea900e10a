import Audit
import Engine
import Foundation
import Logging
import MedicCore
import Synchronization
import Testing

/// Runs steps by script: the engine's decisions are under test here; the steps themselves run
/// against a real systemd in the integration tests.
final class ScriptedRunner: StepRunner {
    private let log = Mutex<[String]>([])
    private let outcomes: @Sendable (Step, String) -> StepOutcome
    private let gate: AsyncStream<Void>?

    init(gate: AsyncStream<Void>? = nil, outcomes: @escaping @Sendable (Step, String) -> StepOutcome = { _, _ in .success("ok") }) {
        self.outcomes = outcomes
        self.gate = gate
    }

    var ran: [String] { log.withLock { $0 } }

    func run(_ step: Step, on target: String) async -> StepOutcome {
        log.withLock { $0.append("\(step.name) \(target)") }
        if let gate { for await _ in gate { break } }
        return outcomes(step, target)
    }
}

func scratchDirectory() -> String {
    let dir = NSTemporaryDirectory() + "medic-engine-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// The engine logs what it does; these tests read the audit log instead.
let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

func webPlaybook(_ units: [String] = ["web.service"]) -> Playbook {
    Playbook(
        name: "web", file: "web.yaml", contentHash: "abc", targets: units.map(Target.init(unit:)),
        rules: [Rule(trigger: .crashed, steps: [.restart(timeout: .seconds(5)), .verify(activeFor: .seconds(1), timeout: .seconds(5))])])
}

func crash(_ unit: String = "web.service") -> Observation {
    Observation(target: unit, kind: .crashed(.signal), time: .now(), facts: ["Result": "signal"], summary: "killed")
}

@Suite("Engine")
final class EngineTests {
    let dir = scratchDirectory()

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    @Test("a crash opens an incident and records observation → opened → intent → result → closed, in that order")
    func recordsInOrder() async throws {
        let store = try AuditStore(stateDirectory: dir)
        let runner = ScriptedRunner()
        let engine = Engine(playbooks: [webPlaybook()], runner: runner, audit: store, logger: quiet)
        await engine.handle(crash())
        await engine.waitUntilIdle()
        let kinds = try store.records().map(\.kind)
        #expect(kinds == ["observation", "incident-opened", "step-intent", "step-result", "step-intent", "step-result", "incident-closed"])
        #expect(runner.ran == ["restart web.service", "verify web.service"])
        let records = try store.records()
        #expect(records.dropFirst().allSatisfy { $0.incident == 2 })
        #expect(records.last?.facts["outcome"] == "recovered")
        let counters = await engine.counters
        let figures: [Int] = [counters.observations, counters.incidentsOpened, counters.recovered, counters.failed, counters.restarts]
        #expect(figures == [1, 1, 1, 0, 1])
    }

    @Test("a second crash of the same target joins the open incident instead of opening another")
    func joinsOpenIncident() async throws {
        let store = try AuditStore(stateDirectory: dir)
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        let engine = Engine(playbooks: [webPlaybook()], runner: ScriptedRunner(gate: gate), audit: store, logger: quiet)
        await engine.handle(crash())
        await engine.handle(crash())
        #expect(await engine.openIncidents.count == 1)
        open.finish()
        await engine.waitUntilIdle()
        #expect(try store.records(AuditQuery(kinds: [.incidentOpened])).count == 1)
        #expect(try store.records(AuditQuery(kinds: [.decision])).first?.message.contains("joined open incident 2") == true)
    }

    @Test("a failed step stops the plan and closes the incident as failed")
    func failedStep() async throws {
        let store = try AuditStore(stateDirectory: dir)
        let runner = ScriptedRunner { step, _ in step.name == "restart" ? .failure("job failed") : .success("ok") }
        let engine = Engine(playbooks: [webPlaybook()], runner: runner, audit: store, logger: quiet)
        await engine.handle(crash())
        await engine.waitUntilIdle()
        #expect(runner.ran == ["restart web.service"])
        #expect(try store.records(AuditQuery(kinds: [.incidentClosed])).first?.facts["outcome"] == "failed")
    }

    @Test("restarts beyond the budget are refused and recorded, and run nothing")
    func restartBudget() async throws {
        let store = try AuditStore(stateDirectory: dir)
        let runner = ScriptedRunner()
        let engine = Engine(
            playbooks: [webPlaybook()], runner: runner, audit: store, budget: RestartBudget(limit: 2, window: .seconds(600)),
            logger: quiet)
        for _ in 0..<3 {
            await engine.handle(crash())
            await engine.waitUntilIdle()
        }
        #expect(runner.ran.filter { $0.hasPrefix("restart") }.count == 2)
        let refused = try #require(try store.records(AuditQuery(kinds: [.stepResult])).last)
        #expect(refused.facts["result"] == "refused")
        #expect(refused.message.contains("2 restarts of web.service in the last 10m"))
    }

    @Test("targets' incidents run independently")
    func independentTargets() async throws {
        let store = try AuditStore(stateDirectory: dir)
        let engine = Engine(playbooks: [webPlaybook(["a.service", "b.service"])], runner: ScriptedRunner(), audit: store, logger: quiet)
        await engine.handle(crash("a.service"))
        await engine.handle(crash("b.service"))
        await engine.waitUntilIdle()
        #expect(try store.records(AuditQuery(kinds: [.incidentClosed])).compactMap(\.target).sorted() == ["a.service", "b.service"])
    }

    @Test("observations of units without a playbook are recorded, and nothing runs")
    func noPlaybook() async throws {
        let store = try AuditStore(stateDirectory: dir)
        let runner = ScriptedRunner()
        let engine = Engine(playbooks: [webPlaybook()], runner: runner, audit: store, logger: quiet)
        await engine.handle(crash("other.service"))
        await engine.waitUntilIdle()
        #expect(runner.ran.isEmpty)
        #expect(try store.records().map(\.kind) == ["observation"])
    }

    @Test("restart budgets parse 'N in DURATION'")
    func budgetParsing() {
        let budget = RestartBudget(parsing: "3 in 10m")
        #expect(budget?.limit == 3)
        #expect(budget?.window == .seconds(600))
        #expect(RestartBudget(parsing: "3 per 10m") == nil)
        #expect(RestartBudget(parsing: "x in 10m") == nil)
    }
}
