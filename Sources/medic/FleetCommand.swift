import ArgumentParser
import Control
import Foundation

/// `medic fleet`: every host of this host's fleet as its medicd sees it.
struct FleetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "The fleet's hosts as this host's medicd sees them: state (up, lost, down, isolated, returning), address, servers, who acts on them; budgets and their holders.",
        subcommands: [FleetRelease.self])

    @Flag(help: "Print the fleet as one JSON object.")
    var json = false

    @OptionGroup var daemon: SocketOption

    func run() throws {
        let response = try daemon.send(ControlRequest(command: .fleet), quiet: true)
        guard let fleet = response.fleet else { throw ExitCode(1) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(fleet), as: UTF8.self))
            return
        }
        print("fleet \(fleet.fleet): this host is \(fleet.host), \(fleet.membership)")
        print("")
        print(Table(header: ["HOST", "STATE", "ADDRESS", "REGISTERED", "ACTED ON BY", "SERVERS"], rows: fleet.hosts.map {
            [$0.name, $0.state, $0.address, $0.registeredSince ?? "-", $0.actingHost ?? "-", $0.servers.isEmpty ? "-" : $0.servers.joined(separator: ", ")]
        }).render())
        if !fleet.budgets.isEmpty {
            print("")
            print(Table(header: ["BUDGET", "SLOT", "HELD BY", "INCIDENT", "SINCE"], rows: fleet.budgets.map {
                [$0.budget, String($0.slot), $0.host, String($0.incident), $0.since]
            }).render())
        }
    }
}

/// `medic fleet release HOST`: frees the budget slots a host holds (one that died mid-reboot
/// and is not coming back soon), so that the next host may take its turn. Root or the admin
/// group; audited.
struct FleetRelease: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release", abstract: "Free the fleet budget slots HOST holds (it died mid-reboot and will not be back soon). Audited.")

    @Argument(help: "The fleet host whose slots are freed.")
    var host: String

    @OptionGroup var daemon: SocketOption

    func run() throws {
        try daemon.send(ControlRequest(command: .fleetRelease, target: host))
    }
}
