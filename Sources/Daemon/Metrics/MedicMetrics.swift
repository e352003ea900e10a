import Engine
import MedicCore
import Prometheus

/// medicd's Prometheus metrics. Most are read off the audit records as they are written (so a
/// metric never says something the audit log does not), the rest off the engine's status and
/// the detectors' services.
final class MedicMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()

    private static let detectBuckets: [Duration] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60].map(seconds)
    private static let recoverBuckets: [Duration] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600].map(seconds)
    private static let writeBuckets: [Duration] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1].map(seconds)

    private let timeToDetect: DurationHistogram
    private let timeToRecover: DurationHistogram
    private let auditWrite: DurationHistogram
    private let auditWriteFailures: Counter
    private let auditWritable: Gauge
    private let incidentsOpen: Gauge
    private let targets: Gauge
    private let lastReloadSuccessful: Gauge
    private let etcdRequest: DurationHistogram
    private let budgetWait: DurationHistogram

    init() {
        timeToDetect = registry.makeDurationHistogram(
            descriptor: Self.name("time_to_detect", "seconds", "From when a fault happened (as its source dates it) to the incident it opened."),
            buckets: Self.detectBuckets)
        timeToRecover = registry.makeDurationHistogram(
            descriptor: Self.name("time_to_recover", "seconds", "From when a fault happened to its target being healthy again (on fresh evidence), for incidents that closed recovered; the stabilisation period is not included."),
            buckets: Self.recoverBuckets)
        auditWrite = registry.makeDurationHistogram(
            descriptor: Self.name("audit_write", "seconds", "How long each durable append to the audit log took."), buckets: Self.writeBuckets)
        auditWriteFailures = registry.makeCounter(
            descriptor: Self.name("audit_write_failures", "total", "Appends to the audit log that failed (the records went to the journal and are retried)."))
        auditWritable = registry.makeGauge(descriptor: Self.name("audit_writable", "", "1 while the audit log can be written; 0 while it cannot (no steps run)."))
        incidentsOpen = registry.makeGauge(descriptor: Self.name("incidents_open", "", "Incidents open now."))
        targets = registry.makeGauge(descriptor: Self.name("watched_targets", "", "Targets (units and the host) the playbooks name."))
        lastReloadSuccessful = registry.makeGauge(
            descriptor: Self.name("config_last_reload_successful", "", "1 if the last reload of the config and playbooks was applied, 0 if it was refused."))
        etcdRequest = registry.makeDurationHistogram(
            descriptor: Self.name("etcd_request", "seconds", "Requests to etcd (the fleet), failed ones included."), buckets: Self.writeBuckets + [2.5, 5].map(Self.seconds))
        budgetWait = registry.makeDurationHistogram(
            descriptor: Self.name("fleet_budget_wait", "seconds", "How long a budgeted step waited for a slot of its fleet budget."), buckets: Self.recoverBuckets)
        registry.makeGauge(descriptor: Self.name("build_info", "", "Medic's version."), labels: [("version", MedicVersion.string)]).set(to: 1)
        auditWritable.set(to: 1)
        lastReloadSuccessful.set(to: 1)
    }

    /// Counts what a batch of records that was just made durable says happened.
    func count(_ records: [AuditRecord]) {
        for record in records {
            switch record.kind {
            case .observation:
                counter("observations", "Observations made by the detectors, by kind.", [("kind", record.details[.observed] ?? "other")]).increment()
            case .incidentOpened:
                counter("incidents_opened", "Incidents opened.", []).increment()
                if let ms = record.details[.timeToDetectMs].flatMap(Int64.init) { timeToDetect.record(.milliseconds(ms)) }
            case .incidentClosed:
                counter("incidents_closed", "Incidents closed, by outcome.", [("outcome", record.details[.outcome] ?? "other")]).increment()
                if let ms = record.details[.timeToRecoverMs].flatMap(Int64.init) { timeToRecover.record(.milliseconds(ms)) }
            case .stepResult:
                counter("steps", "Steps run, by kind and result.", [("step", record.step ?? "other"), ("result", record.details[.result] ?? "other")]).increment()
                if let ms = record.details["budget_waited_ms"].flatMap(Int64.init) { budgetWait.record(.milliseconds(ms)) }
            case .guardStopped:
                counter("guard_stops", "Steps and plans a guard stopped or held, by guard.", [("guard", record.details[.guardName] ?? "other")]).increment()
            case .escalation:
                counter("escalations", "Escalations (a ladder level, or a human).", []).increment()
            default:
                break
            }
        }
    }

    /// One append to the audit log: how long it took, and whether it was made durable.
    func auditAppend(took duration: Duration, succeeded: Bool) {
        auditWrite.record(duration)
        if !succeeded { auditWriteFailures.increment() }
    }

    /// The engine's status changed.
    func update(_ status: Engine.Status, targets count: Int) {
        incidentsOpen.set(to: Double(status.openIncidents))
        auditWritable.set(to: status.auditProblem == nil ? 1 : 0)
        targets.set(to: Double(count))
    }

    /// A reload was applied (or refused).
    func reloaded(_ applied: Bool, targets count: Int? = nil) {
        lastReloadSuccessful.set(to: applied ? 1 : 0)
        if let count { targets.set(to: Double(count)) }
    }

    /// Whether a detector is running (1) or has stopped or lost its source (0).
    func detector(_ name: String, up: Bool) {
        registry.makeGauge(descriptor: Self.name("detector_up", "", "1 while the detector runs and reaches its source; 0 when it stopped or lost it."),
                           labels: [("detector", name)]).set(to: up ? 1 : 0)
    }

    /// One request to etcd: how long it took, and how it failed if it did.
    func etcd(took duration: Duration, failed kind: String?) {
        etcdRequest.record(duration)
        if let kind {
            counter("etcd_request_errors", "Requests to etcd that failed, by why (unreachable, denied, leaseNotFound, failed).", [("kind", kind)]).increment()
        }
    }

    /// One request to Alertmanager's webhook, by how it was answered: accepted, repeat (every
    /// alert in it seen before), unauthorized, malformed, too-large, unavailable (the audit log
    /// could not be written: 503, Alertmanager sends it again).
    func alertWebhook(_ result: String) {
        counter("alert_webhook_requests", "Requests to Alertmanager's webhook, by how they were answered.", [("result", result)]).increment()
    }

    /// The fleet's other hosts as this one sees them, by state.
    func fleet(_ states: [String]) {
        for state in ["up", "lost", "down", "isolated", "returning"] {
            registry.makeGauge(descriptor: Self.name("fleet_peers", "", "The fleet's other hosts, by state as this host sees them."), labels: [("state", state)])
                .set(to: Double(states.filter { $0 == state }.count))
        }
    }

    private func counter(_ name: String, _ help: String, _ labels: [(String, String)]) -> Counter {
        registry.makeCounter(descriptor: Self.name(name, "total", help), labels: labels)
    }

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "medic", metricName: metric, unitName: unit, helpText: help)
    }

    private static func seconds(_ value: Double) -> Duration { .nanoseconds(Int64(value * 1e9)) }
}
