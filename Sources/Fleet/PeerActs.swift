import Foundation
import MedicCore

/// What one host did to another while it was away (took its servers out, returned them, paged
/// a human about it), kept in etcd at `/medic/FLEET/done/HOST/PEER-SEQ` until that host is back
/// and has written it into its own audit log, so that a post-mortem can be written from either
/// side. Bound to no lease: the peer that acted may be gone by then.
public struct PeerAct: StoredJSON, Sendable, Equatable {
    /// The host that acted, and the record in its audit log.
    public var peer: String
    public var seq: Int64
    public var incident: Int64?
    public var kind: String
    public var step: String?
    public var message: String
    /// When, RFC 3339.
    public var time: String

    public init(peer: String, seq: Int64, incident: Int64?, kind: String, step: String?, message: String, time: String) {
        self.peer = peer
        self.seq = seq
        self.incident = incident
        self.kind = kind
        self.step = step
        self.message = message
        self.time = time
    }
}

extension FleetKeys {
    /// What peers did to `host`: `done/HOST/`.
    public func done(to host: String) -> String { prefix + "done/" + host + "/" }
}

/// Both ends of `PeerAct`: the acting host tells, the returning host reads and clears.
public struct PeerActs: Sendable {
    public let store: FleetStore
    public let keys: FleetKeys
    public let host: String

    public init(store: FleetStore, fleet: FleetConfig) {
        self.store = store
        keys = FleetKeys(fleet: fleet.name)
        host = fleet.host
    }

    /// The records (with their sequence numbers) about fleet peers that say what this host did
    /// to them, and for whom: incidents opened and closed, steps done, escalations.
    public static func acts(in records: [AuditRecord], seqs: [Int64]) -> [(peer: String, record: AuditRecord, seq: Int64)] {
        zip(records, seqs).compactMap { record, seq in
            guard let target = record.target, target.hasPrefix(TargetSelector.peerPrefix),
                  [.incidentOpened, .incidentClosed, .stepResult, .guardStopped, .escalation].contains(record.kind)
            else { return nil }
            return (String(target.dropFirst(TargetSelector.peerPrefix.count)), record, seq)
        }
    }

    /// Tells the peer what this host did to it (best effort: etcd out of reach loses nothing of
    /// this host's own audit log, only the copy for the peer).
    public func tell(_ peer: String, _ record: AuditRecord, seq: Int64) async {
        let act = PeerAct(
            peer: host, seq: seq, incident: record.incident, kind: record.kind.rawValue, step: record.step, message: record.message,
            time: record.time.iso8601)
        _ = try? await store.put(keys.done(to: peer) + "\(host)-\(seq)", act.bytes, lease: nil)
    }

    /// What peers did to this host while it was away, oldest first; each read is deleted once
    /// `record` has made it durable here.
    public func collect(record: ([PeerAct]) async throws -> Void) async throws {
        let (found, _) = try await store.range(keys.done(to: host), prefix: true)
        let acts = found.compactMap { key in PeerAct(bytes: key.value).map { (key.key, $0) } }.sorted { ($0.1.time, $0.1.seq) < ($1.1.time, $1.1.seq) }
        guard !acts.isEmpty else { return }
        try await record(acts.map(\.1))
        for (key, _) in acts { try await store.delete(key, prefix: false) }
    }
}
