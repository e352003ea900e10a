import Audit
import Engine
import MedicCore
import Systemd

/// What medicd takes over from the one before it: notices a new boot of the host, finishes the
/// record of every step a previous medicd wrote the intent of and never saw end (a reboot it
/// asked for, or any step it was killed in the middle of) without running it again, and, once
/// every target is watched, has the engine check each unfinished incident's target: closed if
/// it is healthy, escalated if not.
struct IncidentRecovery: Sendable {
    /// The boot medicd started in.
    let boot: String
    let unfinished: [AuditStore.UnfinishedIncident]
    let records: [AuditRecord]

    init(store: AuditStore, manager: SystemdManager) async throws {
        boot = (try? await manager.bootIdentity()) ?? "unknown"
        let previous = try store.lastBoot()
        unfinished = try store.unfinishedIncidents()
        let rebooted = previous != nil && previous != boot
        var records: [AuditRecord] = []
        if let previous, rebooted {
            records.append(AuditRecord(kind: .daemon, message: "the host booted since medicd last ran: boot \(boot) (was \(previous))",
                                       details: ["boot": boot, "previous_boot": previous]))
        }
        for incident in unfinished {
            guard let step = incident.interruptedStep else { continue }
            let message: String
            let result: String
            if step == StepKind.reboot.rawValue {
                result = rebooted ? "succeeded" : "interrupted"
                message = rebooted
                    ? "reboot succeeded: the host rebooted (new boot \(boot))"
                    : "reboot interrupted: medicd stopped before it saw the host reboot, and this is the same boot; it is not asked for again"
            } else {
                result = "interrupted"
                message = "\(step) interrupted: medicd stopped while it ran, so how it ended is unknown; it is not run again"
            }
            records.append(AuditRecord(
                kind: .stepResult, target: incident.target, incident: incident.incident, playbook: incident.playbook, step: step,
                message: message, details: [AuditFact.result.name: result, "boot_after": boot]))
        }
        self.records = records
    }

    /// Registers the incidents with the engine before the targets are read, so that what the
    /// first read finds joins them instead of opening new ones.
    func register(into engine: Engine) async {
        for incident in unfinished {
            await engine.register(incident: incident.incident, target: incident.target, playbook: incident.playbook, trigger: incident.trigger)
        }
    }

    /// Hands the incidents to the engine; call once every target is watched.
    func adopt(into engine: Engine) async {
        for incident in unfinished {
            await engine.adopt(
                incident: incident.incident, target: incident.target, playbook: incident.playbook, trigger: incident.trigger,
                why: incident.interruptedStep == StepKind.reboot.rawValue ? "after the reboot it asked for" : "from the medicd before this one")
        }
    }
}
