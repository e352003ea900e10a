import MedicCore
import Engine

/// Replays a timeline through the real engine on a virtual clock, without touching systemd:
/// steps that act on the world succeed at once (unless the timeline says one fails), a
/// successful restart or start makes the target healthy (its probe passes `successes` intervals
/// later, its heartbeat arrives one interval later), a stop makes it inactive.
public struct Simulator {
    /// A record the engine wrote, at its virtual time since the start.
    public struct Entry: Sendable {
        public var at: Duration
        public var record: AuditRecord
    }

    private enum Item {
        case observe(Observation)
        case failNext(String, StepKind)
        case finished(token: Int, step: Step, context: StepContext)
        case wake(Int)
    }

    private var core: EngineCore
    private let base: Timestamp
    private var queue: [(time: Timestamp, order: Int, item: Item)] = []
    private var order = 0
    /// How many of the next steps of each kind fail, per target.
    private var failures: [String: [StepKind: Int]] = [:]
    private var silences: [Silence] = []

    /// The virtual time of `at: 0s`.
    public static let epoch = Timestamp(wallMicroseconds: 1_798_761_600_000_000, monotonicNanoseconds: 1_000_000_000_000)

    public init(playbooks: [Playbook], dryRun: Bool = false) {
        core = EngineCore(playbooks: playbooks, settings: .init(dryRun: dryRun))
        base = Self.epoch
    }

    /// Puts a silence in force, as `medic silence` would.
    public mutating func silence(_ silence: Silence) {
        silences.append(silence)
        core.restoreHolds(silences: silences, paused: [])
    }

    /// Runs the timeline, and the engine's own wake-ups up to `horizon` after the last entry.
    public mutating func run(_ timeline: Timeline, horizon: Duration = .seconds(3600)) -> [Entry] {
        for (at, entry) in timeline.entries {
            switch entry {
            case .observe(let observation): push(base.adding(at), .observe(observation))
            case .failNext(let target, let step): push(base.adding(at), .failNext(target, step))
            }
        }
        let end = base.adding((timeline.entries.map(\.at).max() ?? .zero) + horizon)
        var out: [Entry] = []
        while !queue.isEmpty {
            let next = queue.removeFirst()
            guard next.time <= end else { break }
            let commands: [EngineCore.Command]
            switch next.item {
            case .observe(let observation):
                var o = observation
                o.time = next.time
                commands = core.observe(o)
            case .failNext(let target, let step):
                failures[target, default: [:]][step, default: 0] += 1
                commands = []
            case .finished(let token, let step, let context):
                let target = context.target
                let fails = (failures[target]?[step.kind] ?? 0) > 0
                if fails { failures[target]?[step.kind]! -= 1 }
                commands = core.stepFinished(
                    token: token, outcome: fails ? .failure("failed (as the timeline says)") : .success("done (simulated)"), at: next.time)
                if !fails, step.kind == .stop {
                    push(next.time, .observe(Observation(target: target, kind: .stateChanged, time: next.time, facts: ["ActiveState": "inactive"], summary: "inactive (stopped)")))
                }
                if !fails, [.restart, .start].contains(step.kind) { freshEvidence(for: context, after: next.time) }
            case .wake(let token):
                commands = core.wake(token: token, at: next.time)
            }
            for command in commands {
                switch command {
                case .record(let record): out.append(Entry(at: record.time.since(base), record: record))
                case .run(let token, let step, let context): push(next.time.adding(.milliseconds(1)), .finished(token: token, step: step, context: context))
                case .wake(let token, let at): push(max(at, next.time), .wake(token))
                }
            }
        }
        return out
    }

    /// What the new process of a restarted target says of itself: its probe passes and its
    /// heartbeats arrive.
    private mutating func freshEvidence(for context: StepContext, after time: Timestamp) {
        if let probe = context.spec?.probe {
            let at = time.adding(probe.every * probe.successes)
            push(at, .observe(Observation(
                target: context.target, kind: .healthy, time: at, occurred: at.adding(.zero - probe.every), facts: [:], summary: "probe passing (simulated)")))
        }
        if let heartbeat = context.spec?.heartbeat {
            let at = time.adding(heartbeat.every)
            push(at, .observe(Observation(target: context.target, kind: .heartbeatResumed, time: at, facts: [:], summary: "heartbeat from the new process (simulated)")))
        }
    }

    private mutating func push(_ time: Timestamp, _ item: Item) {
        order += 1
        let entry = (time, order, item)
        let index = queue.firstIndex { ($0.time, $0.order) > (time, order) } ?? queue.endIndex
        queue.insert(entry, at: index)
    }
}
