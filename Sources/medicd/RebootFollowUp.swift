import Audit
import Engine
import MedicCore
import Systemd

/// What medicd does at start about reboots: notices a new boot of the host, and finishes the
/// record of every reboot a previous medicd asked for and was stopped by, then (once every
/// target is watched) has the engine check that those incidents' targets came back healthy.
struct RebootFollowUp: Sendable {
    /// The boot medicd started in.
    let boot: String
    let interrupted: [AuditStore.InterruptedReboot]
    let records: [AuditRecord]

    init(store: AuditStore, manager: SystemdManager) async throws {
        boot = (try? await manager.bootIdentity()) ?? "unknown"
        let previous = try store.lastBoot()
        interrupted = try store.interruptedReboots()
        let rebooted = previous != nil && previous != boot
        var records: [AuditRecord] = []
        if let previous, rebooted {
            records.append(AuditRecord(kind: .daemon, message: "the host booted since medicd last ran: boot \(boot) (was \(previous))",
                                       details: ["boot": boot, "previous_boot": previous]))
        }
        for reboot in interrupted {
            records.append(AuditRecord(
                kind: .stepResult, target: reboot.target, incident: reboot.incident, playbook: reboot.playbook, step: StepKind.reboot.rawValue,
                message: rebooted
                    ? "reboot succeeded: the host rebooted (new boot \(boot))"
                    : "reboot interrupted: medicd stopped before it saw the host reboot, and this is the same boot; it is not asked for again",
                details: ["result": rebooted ? "succeeded" : "interrupted", "boot_after": boot]))
        }
        self.records = records
    }

    /// Hands the incidents to the engine; call once every target is watched.
    func adopt(into engine: Engine) async {
        for reboot in interrupted {
            await engine.adoptAfterReboot(incident: reboot.incident, target: reboot.target, playbook: reboot.playbook, trigger: reboot.trigger)
        }
    }
}
