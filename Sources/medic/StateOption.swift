import ArgumentParser
import Audit
import Foundation
import MedicCore
import Posix

/// `--state DIR`, for the commands that read medicd's audit log.
struct StateOption: ParsableArguments {
    @Option(help: "State directory of medicd (the audit log is STATE/audit.sqlite).")
    var state = DefaultPaths.state

    /// Opens the audit log read-only, or says why not and exits 1.
    func openForReading() throws -> AuditStore {
        do {
            return try AuditStore(stateDirectory: state, readOnly: true)
        } catch {
            StandardStream.write("medic: \(error)\n", to: STDERR_FILENO)
            throw ExitCode(1)
        }
    }
}
