import Fleet
import MedicCore

/// An `AuditSink` that, once records about fleet peers are durable here, also leaves a copy
/// for each peer in etcd (`PeerActs`), so that a host back from the dead can record what was
/// done to it. The copy is sent beside the append, never holding it up.
struct TellingAuditSink: AuditSink {
    let inner: AuditSink
    let acts: PeerActs

    func append(_ records: [AuditRecord]) async throws -> [Int64] {
        let seqs = try await inner.append(records)
        let told = PeerActs.acts(in: records, seqs: seqs)
        if !told.isEmpty {
            Task { for act in told { await acts.tell(act.peer, act.record, seq: act.seq) } }
        }
        return seqs
    }
}
