import Logging
import MedicCore
import Playbooks

/// The log lines and audit records for a playbook directory just read.
enum PlaybookLoading {
    static func records(for directory: PlaybookDirectory, logger: Logger) -> [AuditRecord] {
        var records: [AuditRecord] = []
        for playbook in directory.playbooks {
            let targets = playbook.targets.map(\.selector.description).joined(separator: ", ")
            logger.info("loaded playbook \(playbook.name) from \(playbook.file): \(targets)")
            records.append(AuditRecord(
                kind: .playbookLoaded, playbook: playbook.name, playbookHash: playbook.contentHash,
                message: "loaded \(playbook.file)", details: ["targets": targets]))
        }
        for (file, diagnostics) in directory.refused {
            for diagnostic in diagnostics.all { logger.error("refused playbook: \(diagnostic)") }
            records.append(AuditRecord(kind: .playbookRefused, message: "refused \(file)", details: ["errors": diagnostics.description]))
        }
        return records
    }
}
