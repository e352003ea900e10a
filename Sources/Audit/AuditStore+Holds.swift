import GRDB
import MedicCore

/// What humans (and the flap guard) set that changes what Medic does: silences and pauses. They
/// live in the chain only, as records, so nothing outside it can silence Medic unseen; the
/// daemon's view is rebuilt by replaying them.
public struct Holds: Sendable {
    /// Silences not yet over, with the record that set each.
    public var silences: [(silence: Silence, seq: Int64)] = []
    /// Paused targets (`*`: every target), with the record that paused each.
    public var paused: [String: Int64] = [:]
    /// Records of holds that are not part of the chain (their hash or their links to the
    /// records beside them do not match), ignored, with why.
    public var ignored: [(seq: Int64, why: String)] = []

    /// The kinds of record that set or end a hold.
    static let kinds: [AuditRecord.Kind] = [.silence, .humanCommand, .guardStopped]

    /// Replays `records` (oldest first) into the holds in force at `now`.
    static func replay(_ records: [StoredRecord], now: Timestamp) -> Holds {
        var holds = Holds()
        for record in records {
            let facts = record.facts, seq = record.seq ?? 0
            switch AuditRecord.Kind(rawValue: record.kind) {
            case .silence:
                guard let pattern = record.target else { continue }
                if facts[.command] == "unsilence" {
                    let ended = now.movedTo(wall: record.wallMicroseconds)
                    for index in holds.silences.indices where holds.silences[index].silence.pattern == pattern && holds.silences[index].silence.end > ended {
                        holds.silences[index].silence.end = max(ended, holds.silences[index].silence.start)
                    }
                } else if let silence = Silence(pattern: pattern, details: facts, author: record.actor, now: now) {
                    holds.silences.append((silence, seq))
                }
            case .humanCommand:
                let target = record.target ?? "*"
                switch facts[.command] {
                case "pause": holds.paused[target] = seq
                case "resume" where target == "*": holds.paused.removeAll()
                case "resume": holds.paused[target] = nil
                default: break
                }
            case .guardStopped where facts[.paused] == "true":
                if let target = record.target { holds.paused[target] = seq }
            default:
                break
            }
        }
        holds.silences.removeAll { $0.silence.end <= now }
        return holds
    }

    /// Records that set again, as of now, the holds set by records up to `seq` (which are about
    /// to be pruned): the chain keeps holding them.
    func carriedOver(through seq: Int64, now: Timestamp) -> [AuditRecord] {
        let note = "carried over from record %@, as older records were pruned"
        var records = silences.filter { $0.seq <= seq }.map { silence, origin in
            var details = silence.details
            details["carried_from"] = String(origin)
            return AuditRecord(
                kind: .silence, time: now, target: silence.pattern,
                message: "silence on \(silence.pattern) until \(silence.end.iso8601) by \(silence.author): \(note.replacingOccurrences(of: "%@", with: String(origin)))",
                details: details)
        }
        for (target, origin) in paused.sorted(by: { $0.value < $1.value }) where origin <= seq {
            records.append(AuditRecord(
                kind: .humanCommand, time: now, target: target == "*" ? nil : target,
                message: "automatic action on \(target == "*" ? "every target" : target) stays paused: \(note.replacingOccurrences(of: "%@", with: String(origin)))",
                details: [AuditFact.command.name: "pause", "carried_from": String(origin)]))
        }
        return records
    }
}

extension AuditStore {
    /// The silences and pauses in force at `now`, rebuilt from the chain.
    public func holds(now: Timestamp) throws -> Holds {
        try read { db in try Self.holds(db, now: now) }
    }

    /// Only records that belong to the chain count: each one's hash must match its content, and
    /// link to the records before and after it. A row put into the table by other means (a
    /// silence nobody set through medicd) is ignored and reported.
    static func holds(_ db: Database, now: Timestamp) throws -> Holds {
        var chained: [StoredRecord] = []
        var ignored: [(seq: Int64, why: String)] = []
        let anchor = try AuditChain.anchor(db)
        for record in try AuditQuery(kinds: Holds.kinds).request().fetchAll(db) {
            let seq = record.seq ?? 0
            let before = seq == anchor?.seq ? anchor?.prevHash : try String.fetchOne(db, sql: "SELECT hash FROM record WHERE seq = ?", arguments: [seq - 1]) ?? (seq == 1 ? "" : nil)
            let after = try String.fetchOne(db, sql: "SELECT prevHash FROM record WHERE seq = ?", arguments: [seq + 1])
            if AuditChain.hash(record, previous: record.prevHash) != record.hash {
                ignored.append((seq, "its content does not match its hash"))
            } else if before != record.prevHash {
                ignored.append((seq, "it does not follow record \(seq - 1)"))
            } else if let after, after != record.hash {
                ignored.append((seq, "record \(seq + 1) does not follow it"))
            } else {
                chained.append(record)
            }
        }
        var holds = Holds.replay(chained, now: now)
        holds.ignored = ignored
        return holds
    }
}
