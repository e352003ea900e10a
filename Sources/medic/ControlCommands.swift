import ArgumentParser
import Control
import Foundation
import MedicCore
import Posix

/// `--socket PATH`, for the commands that talk to medicd.
struct SocketOption: ParsableArguments {
    @Option(help: "medicd's control socket.")
    var socket = ControlClient.defaultSocket

    /// Sends `request`; prints the answer's message, or its error and exits 1; exits 3 when no
    /// medicd answers (as systemctl does for a unit that is not running).
    @discardableResult
    func send(_ request: ControlRequest, quiet: Bool = false) throws -> ControlResponse {
        let response: ControlResponse
        do {
            response = try ControlClient.send(request, to: socket)
        } catch {
            StandardStream.write("medic: \(error)\n", to: STDERR_FILENO)
            if case .notRunning = error { throw ExitCode(3) }
            throw ExitCode(1)
        }
        guard response.ok else {
            StandardStream.write("medic: \(response.error ?? "medicd refused")\n", to: STDERR_FILENO)
            throw ExitCode(1)
        }
        if !quiet, let message = response.message { print(message) }
        return response
    }
}

/// `medic silence UNIT --for 1h --reason TEXT`: no automatic action on matching targets until it
/// ends; observations are still recorded.
struct SilenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "silence",
        abstract: "Stop automatic action on a target (or a glob of them) for a while; observations are still recorded.")

    @Argument(help: "A unit name or glob, e.g. web@*.service, or * for everything.")
    var target: String

    @Option(name: .customLong("for"), help: "How long, e.g. 30m, 2h.")
    var duration: String

    @Option(help: "Why (kept in the audit log).")
    var reason: String

    @Option(help: "Start later (a maintenance window), after this long, e.g. 2h.")
    var startIn: String?

    @OptionGroup var daemon: SocketOption

    func validate() throws {
        if DurationText.parse(duration) == nil { throw ValidationError("--for '\(duration)' is not a duration such as 30m or 2h") }
        if let startIn, DurationText.parse(startIn) == nil { throw ValidationError("--start-in '\(startIn)' is not a duration") }
        if reason.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--reason must say why") }
    }

    func run() throws {
        try daemon.send(ControlRequest(command: .silence, target: target, duration: duration, startIn: startIn, reason: reason))
    }
}

/// `medic unsilence UNIT`.
struct UnsilenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unsilence", abstract: "End the silences on a target now.")

    @Argument(help: "The unit name or glob the silence was set on.")
    var target: String

    @OptionGroup var daemon: SocketOption

    func run() throws { try daemon.send(ControlRequest(command: .unsilence, target: target)) }
}

/// `medic pause [UNIT]`.
struct PauseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Stop automatic action on a target, or on every target, until medic resume.")

    @Argument(help: "The unit; every target when left out.")
    var target: String?

    @OptionGroup var daemon: SocketOption

    func run() throws { try daemon.send(ControlRequest(command: .pause, target: target ?? "*")) }
}

/// `medic resume [UNIT]`.
struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Let Medic act again on a target (or every target) paused by a person or for flapping.")

    @Argument(help: "The unit; every target when left out.")
    var target: String?

    @OptionGroup var daemon: SocketOption

    func run() throws { try daemon.send(ControlRequest(command: .resume, target: target ?? "*")) }
}

/// `medic run PLAYBOOK --target UNIT`.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a playbook on a target now, as if it had triggered (its guards still apply).")

    @Argument(help: "The playbook's name.")
    var playbook: String

    @Option(help: "The unit to run it on.")
    var target: String

    @OptionGroup var daemon: SocketOption

    func run() throws { try daemon.send(ControlRequest(command: .run, target: target, playbook: playbook)) }
}

/// `medic reload`.
struct ReloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload", abstract: "Reload the playbooks (validated first; an invalid set is refused and the running one kept).")

    @OptionGroup var daemon: SocketOption

    func run() throws { try daemon.send(ControlRequest(command: .reload)) }
}

/// `medic status`.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Targets and their health, open incidents, guards in force, silences, dry-run, last reload.")

    @Flag(help: "Print the status as one JSON object.")
    var json = false

    @OptionGroup var daemon: SocketOption

    func run() throws {
        let response = try daemon.send(ControlRequest(command: .status), quiet: true)
        guard let status = response.status else { throw ExitCode(1) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(status), as: UTF8.self))
            return
        }
        let engine = status.engine
        print("medicd pid \(status.pid), up since \(status.startedAt)" + (status.lastReload.map { ", playbooks reloaded \($0)" } ?? "")
            + (engine.dryRun ? ", DRY-RUN" : "") + (engine.pausedAll ? ", PAUSED on every target" : ""))
        if let problem = status.auditProblem { print("AUDIT LOG UNWRITABLE: \(problem); no steps run until it can be written") }
        print("playbooks: \(engine.playbooks.joined(separator: ", "))")
        print("")
        let health = { (healthy: Bool?) in healthy.map { $0 ? "healthy" : "UNHEALTHY" } ?? "unknown" }
        print(Table(header: ["TARGET", "HEALTH", "PAUSED", "INCIDENTS"], rows: engine.targets.map {
            [$0.name, health($0.healthy), $0.paused ? "yes" : "-", $0.incidents.isEmpty ? "-" : $0.incidents.map(String.init).joined(separator: ",")]
        }).render())
        if !engine.incidents.isEmpty {
            print("")
            print(Table(header: ["INCIDENT", "TARGET", "PLAYBOOK", "TRIGGER", "ATTEMPT", "NOW"], rows: engine.incidents.map {
                [String($0.id), $0.target, $0.playbook, $0.trigger, String($0.attempt), $0.phase]
            }).render())
        }
        if let limits = status.limits, !limits.isEmpty {
            print("")
            print(Table(header: ["TARGET", "LIMIT", "WATCHED"], rows: limits.map { [$0.target, $0.limit, $0.how] }).render())
        }
        for silence in engine.silences { print("silenced: \(silence.pattern) until \(silence.until) by \(silence.author): \(silence.reason)") }
        let c = engine.counters
        print("\nsince start: \(c.observations) observations, \(c.incidentsOpened) incidents, \(c.restarts) restarts, \(c.recovered) recovered, "
            + "\(c.escalations) escalations, \(c.guardStops) guard stops")
    }
}
