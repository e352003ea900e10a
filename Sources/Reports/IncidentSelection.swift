import Audit
import MedicCore

/// Which incidents a report tells, read from the audit log.
public enum IncidentSelection {
    /// Incident `id`, first, and the incidents bound up with it: those it waited for or that
    /// waited for it (a dependency), and, when a storm held it, the others of its playbook the
    /// same storm held while it was open. Nil when the log has no incident `id`.
    public static func incident(_ id: Int64, in store: AuditStore, now: Int64) throws -> [IncidentStory]? {
        let own = try store.records(AuditQuery(incident: id))
        guard let summary = IncidentSummary.from(own).first(where: { $0.id == id }) else { return nil }
        let story = IncidentStory(summary, records: own, now: now)
        // Incidents opened from an hour before it until it closed.
        var query = AuditQuery(sinceWallMicroseconds: story.impactStart - 3_600_000_000, kinds: [.incidentOpened])
        query.untilWallMicroseconds = story.end + 1
        let nearby = try store.records(query).compactMap(\.incident).filter { $0 != id }
        let others = try stories(Set(nearby), in: store, now: now).filter { other in
            guard other.end >= story.impactStart else { return false }
            return story.awaitedIncidents.contains(other.summary.id) || other.awaitedIncidents.contains(id)
                || (story.heldByStorm && other.heldByStorm && other.summary.playbook == story.summary.playbook)
        }
        return [story] + others
    }

    /// Every incident opened since `since`, oldest first.
    public static func since(_ since: Int64, in store: AuditStore, now: Int64) throws -> [IncidentStory] {
        let opened = try store.records(AuditQuery(sinceWallMicroseconds: since, kinds: [.incidentOpened])).compactMap(\.incident)
        return try stories(Set(opened), in: store, now: now)
    }

    private static func stories(_ ids: Set<Int64>, in store: AuditStore, now: Int64) throws -> [IncidentStory] {
        guard !ids.isEmpty else { return [] }
        let records = try store.records(ofIncidents: ids)
        var byIncident: [Int64: [StoredRecord]] = [:]
        for record in records { byIncident[record.incident ?? 0, default: []].append(record) }
        return IncidentSummary.from(records).filter { ids.contains($0.id) }.map {
            IncidentStory($0, records: byIncident[$0.id] ?? [], now: now)
        }
    }
}
