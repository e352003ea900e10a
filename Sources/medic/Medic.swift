import ArgumentParser

/// medic: the operator's command line for Medic.
@main
struct Medic: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "medic",
        abstract: "Operate Medic: validate playbooks and read the audit log.",
        subcommands: [Check.self, AuditCommand.self])
}
