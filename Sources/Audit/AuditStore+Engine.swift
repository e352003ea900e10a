import Foundation
import GRDB
import MedicCore

/// What the engine needs from the audit log when the daemon starts: where incident numbering
/// goes on, the guard history, and the silences in force.
extension AuditStore {
    /// The next free incident ID.
    public func nextIncidentID() throws -> Int64 {
        try read { db in (try Int64.fetchOne(db, sql: "SELECT MAX(incident) FROM record") ?? 0) + 1 }
    }

    /// Steps that ran and plans that failed within `window` before `now`, with their times moved
    /// onto this boot's monotonic clock, for `EngineCore.restore`.
    public func guardHistory(within window: Duration, now: Timestamp) throws -> (stepRuns: [(target: String, kind: StepKind, time: Timestamp)], failures: [(target: String, time: Timestamp)]) {
        let since = now.wallMicroseconds - window.milliseconds * 1000
        let rows = try records(AuditQuery(sinceWallMicroseconds: since, kinds: [.stepIntent, .decision, .guardStopped]))
        // Steps a runner's guard refused (capacity, a fleet budget) never ran: their intents do
        // not count. Paired by incident and the step's place in its plan.
        let refused = Set(rows.filter { $0.kind == AuditRecord.Kind.guardStopped.rawValue && $0.facts[.notRun] == "true" }
            .compactMap { row in row.incident.map { "\($0) \(row.facts["step"] ?? "")" } })
        var runs: [(String, StepKind, Timestamp)] = []
        var failures: [(String, Timestamp)] = []
        for row in rows {
            guard let target = row.target else { continue }
            let time = now.movedTo(wall: row.wallMicroseconds)
            if row.kind == AuditRecord.Kind.stepIntent.rawValue, let step = row.step.flatMap(StepKind.init(rawValue:)), !row.wasDryRun,
               !refused.contains("\(row.incident ?? -1) \(row.facts["step"] ?? "")") {
                runs.append((target, step, time))
            } else if row.facts[.failure] == "true" {
                failures.append((target, time))
            }
        }
        return (runs, failures)
    }

    /// The servers Medic took out of their pools and has not returned (`socket backend/server`,
    /// as `PoolAction.key` makes them), from the last pool step of each server.
    public func poolHolds() throws -> Set<String> {
        var held: [String: Bool] = [:]
        for record in try records(AuditQuery(kinds: [.stepResult])) where record.step == StepKind.pool.rawValue {
            guard let socket = record.facts[.poolSocket], let server = record.facts[.poolServer], let flag = record.facts[.poolHeld] else { continue }
            held["\(socket) \(server)"] = flag == "true"
        }
        return Set(held.filter(\.value).keys)
    }

    /// An incident a previous medicd left open when it stopped (or was killed).
    public struct UnfinishedIncident: Sendable, Equatable {
        public var incident: Int64
        public var target: String
        public var playbook: String
        /// The rule's condition, as the incident-opened record has it.
        public var trigger: String
        /// The step whose intent was written without a result, if one was running.
        public var interruptedStep: String?
    }

    /// Incidents opened and not closed, each with the step left without a result, if any.
    public func unfinishedIncidents() throws -> [UnfinishedIncident] {
        let rows = try records(AuditQuery(kinds: [.incidentOpened, .incidentClosed, .stepIntent, .stepResult]))
        var open: [Int64: UnfinishedIncident] = [:]
        for row in rows {
            guard let incident = row.incident else { continue }
            switch AuditRecord.Kind(rawValue: row.kind) {
            case .incidentOpened:
                open[incident] = UnfinishedIncident(
                    incident: incident, target: row.target ?? "", playbook: row.playbook ?? "", trigger: row.facts[.trigger] ?? "")
            case .incidentClosed:
                open[incident] = nil
            case .stepIntent where !row.wasDryRun:
                open[incident]?.interruptedStep = row.step
            case .stepResult where row.step == open[incident]?.interruptedStep:
                open[incident]?.interruptedStep = nil
            default:
                break
            }
        }
        return open.values.sorted { $0.incident < $1.incident }
    }

    /// The boot identity the last medicd recorded at its start (`SystemdManager.bootIdentity`).
    public func lastBoot() throws -> String? {
        try read { db in
            try String.fetchOne(db, sql: "SELECT json_extract(details, '$.\(AuditFact.boot.name)') FROM record WHERE kind = 'daemon' AND json_extract(details, '$.\(AuditFact.boot.name)') IS NOT NULL ORDER BY seq DESC LIMIT 1")
        }
    }

    /// The last sequence number written (0 for an empty log).
    public func lastSeq() throws -> Int64 {
        try read { db in try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM record") ?? 0 }
    }
}
