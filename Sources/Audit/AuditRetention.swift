import GRDB
import MedicCore

extension AuditStore {
    /// Prunes the oldest records: those written before `cutoff` (wall-clock microseconds), and
    /// more of the oldest while the log uses more than `maxBytes`. The newest record is always
    /// kept. Silences and pauses still in force whose records go are first written again (see
    /// `Holds.carriedOver`), so pruning never lifts one. The first record kept is anchored (see `AuditChain`), so the chain still verifies
    /// and a removal at its start is still caught. Returns how many records went, and the first
    /// sequence number kept.
    @discardableResult
    public func prune(before cutoff: Int64?, maxBytes: Int64?) async throws -> (pruned: Int, firstKept: Int64?) {
        let host = self.host, bootID = self.bootID, sealer = self.sealer
        return try await write { db in
            guard let first = try Int64.fetchOne(db, sql: "SELECT MIN(seq) FROM record"),
                  let last = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM record")
            else { return (0, nil) }
            var through: Int64 = first - 1
            if let cutoff, let old = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM record WHERE wallMicroseconds < ?", arguments: [cutoff]) {
                through = max(through, old)
            }
            if let maxBytes {
                let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
                let free = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
                let pageSize = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
                let used = (pages - free) * pageSize
                if used > maxBytes {
                    let perRecord = max(1, used / max(1, last - first + 1))
                    through = max(through, first - 1 + (used - maxBytes) / perRecord + 1)
                }
            }
            through = min(through, last - 1)
            guard through >= first else { return (0, first) }
            let now = Timestamp.now()
            let carried = try Self.holds(db, now: now).carriedOver(through: through, now: now)
            _ = try AuditChain.append(carried, host: host, bootID: bootID, sealer: sealer, db: db)
            guard let anchor = try Row.fetchOne(db, sql: "SELECT seq, prevHash FROM record WHERE seq > ? ORDER BY seq LIMIT 1", arguments: [through])
            else { return (0, first) }
            try db.execute(sql: "DELETE FROM record WHERE seq <= ?", arguments: [through])
            let pruned = db.changesCount
            let seq: Int64 = anchor["seq"]
            let prevHash: String = anchor["prevHash"]
            try db.execute(sql: "INSERT OR REPLACE INTO chain_anchor (id, seq, prevHash) VALUES (1, ?, ?)", arguments: [seq, prevHash])
            return (pruned, seq)
        }
    }
}
