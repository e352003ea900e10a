import Engine
import Logging
import MedicCore
import Synchronization
import Testing

/// An audit log in memory that counts its durable writes.
private final class CountingLog: AuditSink {
    private let state = Mutex<(writes: Int, records: [AuditRecord])>((0, []))

    func append(_ records: [AuditRecord]) async throws -> [Int64] {
        state.withLock { state in
            state.writes += 1
            state.records += records
            return (0..<records.count).map { Int64(state.records.count - records.count + $0 + 1) }
        }
    }

    var writes: Int { state.withLock { $0.writes } }
    var records: [AuditRecord] { state.withLock { $0.records } }
}

/// Runs every step at once, noting whether its intent was already in the log.
private final class CheckingRunner: StepRunner {
    let log: CountingLog
    private let ran = Mutex<(count: Int, withoutIntent: Int)>((0, 0))

    init(log: CountingLog) { self.log = log }

    func run(_ step: Step, context: StepContext) async -> StepOutcome {
        let durable = log.records.contains { $0.kind == .stepIntent && $0.target == context.target }
        ran.withLock { ran in
            ran.count += 1
            if !durable { ran.withoutIntent += 1 }
        }
        return StepOutcome(succeeded: true, summary: "done")
    }

    var counts: (count: Int, withoutIntent: Int) { ran.withLock { $0 } }
}

@Suite("A burst of incidents is one durable write, and every step's intent is durable before it runs")
struct BurstWriteTests {
    @Test("100 crashes delivered together: one write for every observation, incident and intent; then 100 restarts")
    func burst() async throws {
        let book = try playbook("""
            playbook: burst
            targets: [ { unit: "burst@*.service" } ]
            guards: { storm: 100% in 1m }
            on:
              - when: crashed
                do: [ restart ]
            """)
        let log = CountingLog()
        let runner = CheckingRunner(log: log)
        let engine = Engine(core: EngineCore(playbooks: [book]), runner: runner, audit: log, logger: Logger(label: "test"))
        let now = Timestamp.now()
        await engine.handle((1...100).map {
            Observation(target: "burst@\($0).service", kind: .crashed(.signal), time: now, facts: [:], summary: "killed")
        })
        #expect(log.writes == 1, "\(log.writes) writes")
        #expect(log.records.filter { $0.kind == .stepIntent }.count == 100)
        var counts = runner.counts
        for _ in 0..<200 where counts.count < 100 {
            try await Task.sleep(for: .milliseconds(10))
            counts = runner.counts
        }
        #expect(counts.count == 100 && counts.withoutIntent == 0, "\(counts)")
    }

    @Test("a batcher delivers everything in order, what comes during a delivery together in the next")
    func batcher() async {
        let batcher = Batcher<Int>()
        let batches = Mutex<[[Int]]>([])
        async let delivered: Void = batcher.run { items in
            batches.withLock { $0.append(items) }
            try? await Task.sleep(for: .milliseconds(5))
        }
        for item in 0..<1000 {
            batcher.add(item)
            if item % 100 == 0 { await Task.yield() }
        }
        batcher.finish()
        await delivered
        let all = batches.withLock { $0 }
        #expect(all.flatMap { $0 } == Array(0..<1000))
        #expect(all.count < 1000, "\(all.count) deliveries for 1,000 items")
    }
}
