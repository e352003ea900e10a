import ArgumentParser
import MedicCore

/// medic: the operator's command line for Medic.
@main
struct Medic: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "medic",
        abstract: "Operate Medic: validate and simulate playbooks, read the audit log, silence targets.",
        version: MedicVersion.string,
        subcommands: [
            StatusCommand.self, Check.self, Simulate.self, AuditCommand.self, IncidentsCommand.self, ReportCommand.self,
            SilenceCommand.self, UnsilenceCommand.self, PauseCommand.self, ResumeCommand.self, RunCommand.self, ReloadCommand.self, FleetCommand.self,
        ])
}
