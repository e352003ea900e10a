import Audit
import MedicCore

/// One incident laid out in time, from its records alone: when the impact began and ended, when
/// Medic detected and mitigated it, each step from intent to result, the guard stops,
/// escalations and notifications, and the pool states of its servers. Times are wall-clock
/// microseconds since the epoch.
public struct IncidentStory: Sendable {
    /// A moment of the incident and the record that says so.
    public struct Moment: Sendable, Equatable {
        public var at: Int64
        public var seq: Int64
    }

    /// A step from its intent to its result (or to the guard that refused it at the runner).
    public struct StepSpan: Sendable {
        public var name: String
        /// Its place in the plan, `2/4 restart`, from the intent (decoded once).
        var label: String?
        public var intent: StoredRecord
        /// The record that ended it; nil while it runs, or when medicd never wrote one.
        public var end: StoredRecord?
        /// `succeeded`, `failed`, `refused`, `interrupted`, `dry-run`, or `no result`.
        public var outcome: String
    }

    /// Something that happened at one moment: drawn as a marker.
    public struct Marker: Sendable {
        public enum Kind: String, Sendable { case guardStop = "guard stop", escalation, notification }
        public var kind: Kind
        public var record: StoredRecord
    }

    /// A pool server in one state (`ready`, `drain`, `maint`) from `start` until `end`.
    public struct PoolSpan: Sendable {
        public var server: String
        public var state: String
        public var start: Int64
        public var end: Int64
        /// The pool step's record that set it; nil for the state it was in before.
        public var seq: Int64?
    }

    public var summary: IncidentSummary
    /// Every record of the incident, in the order they were written.
    public var records: [StoredRecord]
    public var host: String
    /// When it broke: detection minus the time to detect, else the first record.
    public var impactStart: Int64
    /// When it was healthy again; nil while it is not (still open, or closed without recovering).
    public var healthyAgain: Moment?
    public var detected: Moment?
    /// The first step that took the fault away from users: a remedy that succeeded, or the
    /// server taken out of its pool (or the moment it was healthy again, if that came first).
    public var mitigated: Moment?
    public var closed: Moment?
    public var steps: [StepSpan]
    public var markers: [Marker]
    public var pool: [PoolSpan]
    /// The last moment the story speaks of.
    public var end: Int64

    /// The story of `summary`'s incident from its records, in order. An incident still open
    /// ends at `now`.
    public init(_ summary: IncidentSummary, records: [StoredRecord], now: Int64) {
        self.summary = summary
        self.records = records
        let opened = records.first { $0.kind == AuditRecord.Kind.incidentOpened.rawValue }
        let closing = records.last { $0.kind == AuditRecord.Kind.incidentClosed.rawValue }
        host = opened?.host ?? records.first?.host ?? "?"
        detected = opened.map { Moment(at: $0.wallMicroseconds, seq: $0.seq ?? 0) }
        let firstTime = records.first?.wallMicroseconds ?? now
        impactStart = opened.map { $0.wallMicroseconds - Int64(summary.timeToDetectMs ?? 0) * 1000 } ?? firstTime
        closed = closing.map { Moment(at: $0.wallMicroseconds, seq: $0.seq ?? 0) }
        if let closing, let stable = summary.stabilisedMs {
            healthyAgain = Moment(at: closing.wallMicroseconds - Int64(stable) * 1000, seq: closing.seq ?? 0)
        }
        end = max(closing?.wallMicroseconds ?? now, records.last?.wallMicroseconds ?? firstTime)
        steps = Self.spans(records)
        markers = records.compactMap(Self.marker)
        mitigated = steps.first(where: Self.mitigates).flatMap { span in span.end.map { Moment(at: $0.wallMicroseconds, seq: $0.seq ?? 0) } }
        // A remedy's result is written once its runner saw it work, which can be after the
        // target was already seen healthy: it was mitigated by then.
        if let healthy = healthyAgain, let done = mitigated, healthy.at < done.at { mitigated = Moment(at: healthy.at, seq: done.seq) }
        pool = Self.poolSpans(records, from: min(impactStart, firstTime), until: end)
    }

    /// What a guard refused, and the steps that failed or were interrupted.
    public var setbacks: [StoredRecord] {
        records.filter { $0.kind == AuditRecord.Kind.guardStopped.rawValue || ["failed", "interrupted"].contains($0.facts[.result] ?? "") }
    }

    /// From the fault to detection, in milliseconds, as the engine measured it: unknown when the
    /// fault has no moment of its own (a missed heartbeat, a probe that began failing).
    public var timeToDetectMs: Int? { summary.timeToDetectMs }

    /// From the fault to the first mitigation, in milliseconds (the time to recover when it was
    /// healthy again first).
    public var timeToMitigateMs: Int? {
        guard let mitigated else { return nil }
        if let healthy = healthyAgain, mitigated.at >= healthy.at, let recovered = timeToRecoverMs { return recovered }
        return Int((mitigated.at - impactStart) / 1000)
    }

    /// From the fault to healthy again, in milliseconds: as the engine measured it, else from the records.
    public var timeToRecoverMs: Int? {
        summary.timeToRecoverMs ?? healthyAgain.map { Int(($0.at - impactStart) / 1000) }
    }

    /// The incidents this one waited for (a dependency guard records the incident it waits for).
    var awaitedIncidents: Set<Int64> {
        Set(records.compactMap { $0.kind == AuditRecord.Kind.guardStopped.rawValue ? $0.facts["waits_for_incident"].flatMap(Int64.init) : nil })
    }

    /// Whether a storm guard held this incident.
    var heldByStorm: Bool {
        records.contains { $0.kind == AuditRecord.Kind.guardStopped.rawValue && $0.facts[.guardName] == "storm" }
    }

    /// Intents paired with what ended them: the first later result (or refusal at the runner)
    /// with the same step label, else the same step name.
    private static func spans(_ records: [StoredRecord]) -> [StepSpan] {
        var spans: [StepSpan] = []
        for record in records {
            switch AuditRecord.Kind(rawValue: record.kind) {
            case .stepIntent where record.step != StepKind.notify.rawValue:
                let facts = record.facts
                let dryRun = facts[.dryRun] == "true"
                spans.append(StepSpan(name: record.step ?? "?", label: facts["step"], intent: record, end: nil, outcome: dryRun ? "dry-run" : "no result"))
            case .stepResult, .guardStopped:
                let facts = record.facts
                let label = facts["step"]
                guard let open = spans.firstIndex(where: { span in
                    span.end == nil && span.outcome != "dry-run" && (label.map { span.label == $0 } ?? (span.name == record.step))
                }) else { continue }
                spans[open].end = record
                spans[open].outcome = facts[.result] ?? "succeeded"
            default:
                continue
            }
        }
        return spans
    }

    private static func marker(_ record: StoredRecord) -> Marker? {
        switch AuditRecord.Kind(rawValue: record.kind) {
        case .guardStopped where record.facts[.notRun] != "true":
            return Marker(kind: .guardStop, record: record)
        case .escalation:
            return Marker(kind: .escalation, record: record)
        case .stepResult where record.step == StepKind.notify.rawValue:
            return Marker(kind: .notification, record: record)
        case .stepIntent where record.step == StepKind.notify.rawValue && record.facts[.dryRun] == "true":
            return Marker(kind: .notification, record: record)
        default:
            return nil
        }
    }

    private static func mitigates(_ span: StepSpan) -> Bool {
        guard span.outcome == "succeeded", let kind = StepKind(rawValue: span.name) else { return false }
        if kind == .pool { return span.end?.facts["pool_changed"] == "true" && Self.admin(span.end?.facts["pool_after"]) != "ready" }
        return kind.isRemedy
    }

    /// Each server's states, from the pool steps' before and after.
    private static func poolSpans(_ records: [StoredRecord], from start: Int64, until end: Int64) -> [PoolSpan] {
        var spans: [PoolSpan] = []
        for record in records where record.kind == AuditRecord.Kind.stepResult.rawValue && record.step == StepKind.pool.rawValue {
            guard let server = record.facts[.poolServer], let after = admin(record.facts["pool_after"]) else { continue }
            if let open = spans.lastIndex(where: { $0.server == server }) {
                guard spans[open].state != after else { continue }
                spans[open].end = record.wallMicroseconds
            } else if let before = admin(record.facts["pool_before"]) {
                spans.append(PoolSpan(server: server, state: before, start: start, end: record.wallMicroseconds, seq: nil))
            }
            spans.append(PoolSpan(server: server, state: after, start: record.wallMicroseconds, end: end, seq: record.seq))
        }
        return spans
    }

    /// The administrative state in a server's summary: `s1 UP (ready, 0 sessions)` → `ready`.
    static func admin(_ summary: String?) -> String? {
        guard let summary, let open = summary.lastIndex(of: "(") else { return nil }
        let inside = summary[summary.index(after: open)...]
        return inside.split(separator: ",").first.map(String.init)
    }
}
