import MedicCore

/// An `AuditSink` that times each append and counts what the records say, once they are
/// durable.
struct MeteredAuditSink: AuditSink {
    let inner: AuditSink
    let metrics: MedicMetrics

    func append(_ records: [AuditRecord]) async throws -> [Int64] {
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let seqs = try await inner.append(records)
            metrics.auditAppend(took: clock.now - start, succeeded: true)
            metrics.count(records)
            return seqs
        } catch {
            metrics.auditAppend(took: clock.now - start, succeeded: false)
            throw error
        }
    }
}
