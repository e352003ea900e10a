import MedicCore
import Systemd

/// Reboots the host the bus belongs to: a clean `systemctl reboot` (reboot.target, queued
/// `replace-irreversibly`), asked for only after the step's intent is durable in the audit log
/// (the engine writes it first). Then waits for the new boot, which is how a medicd that
/// survives the reboot (watching a host from outside) sees it done; a medicd on the host itself
/// is stopped by the reboot and records the new boot when it starts again.
struct RebootAction {
    let manager: SystemdManager

    func run(timeout: Duration) async -> StepOutcome {
        let before: String
        do {
            before = try await manager.bootIdentity()
            try await manager.enqueueStart("reboot.target", mode: "replace-irreversibly")
        } catch {
            return .failure("could not ask systemd to reboot: \(error)")
        }
        let asked = ContinuousClock.now
        while ContinuousClock.now - asked < timeout {
            try? await Task.sleep(for: .milliseconds(250))
            if Task.isCancelled {
                return .failure("medicd is stopping while the host reboots", ["boot_before": before, "interrupted": "true"])
            }
            // While the host is down the bus is gone; errors just mean "not back yet".
            if let now = try? await manager.bootIdentity(), now != before {
                let took = ContinuousClock.now - asked
                return .success(
                    "the host rebooted and is back after \(DurationText.format(took)) (new boot \(now))",
                    ["boot_before": before, "boot_after": now, "reboot_ms": String(took.milliseconds)])
            }
        }
        return .failure("no new boot within \(DurationText.format(timeout)) of asking for a reboot", ["boot_before": before])
    }
}
