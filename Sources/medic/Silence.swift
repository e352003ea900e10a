import ArgumentParser
import Audit
import Engine
import Foundation
import MedicCore

/// `medic silence UNIT --for 1h --reason TEXT`: no automatic action on matching targets until
/// it ends. Recorded in the audit log with the caller's uid.
struct SilenceCommand: AsyncParsableCommand {
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

    @Option(help: "State directory of medicd.")
    var state = "/var/lib/medic"

    func validate() throws {
        if DurationText.parse(duration) == nil { throw ValidationError("--for '\(duration)' is not a duration such as 30m or 2h") }
        if let startIn, DurationText.parse(startIn) == nil { throw ValidationError("--start-in '\(startIn)' is not a duration") }
        if reason.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--reason must say why") }
    }

    func run() async throws {
        let store = try openStore(state)
        let now = Timestamp.now()
        let start = now.adding(startIn.flatMap(DurationText.parse) ?? .zero)
        let end = start.adding(DurationText.parse(duration)!)
        let author = "uid \(getuid())"
        try await store.addSilence(Silence(pattern: target, start: start, end: end, reason: reason, author: author))
        _ = try await store.append(AuditRecord(
            kind: .silence, target: target, message: "silenced \(target) from \(start.iso8601) until \(end.iso8601) by \(author): \(reason)",
            details: ["uid": String(getuid()), "reason": reason, "start": start.iso8601, "end": end.iso8601], actor: Caller.actor))
        print("silenced \(target) until \(end.iso8601)")
    }
}

/// `medic unsilence UNIT`: ends the silences on it now.
struct UnsilenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unsilence", abstract: "End the silences on a target now.")

    @Argument(help: "The unit name or glob the silence was set on.")
    var target: String

    @Option(help: "State directory of medicd.")
    var state = "/var/lib/medic"

    func run() async throws {
        let store = try openStore(state)
        let ended = try await store.endSilences(target, now: .now())
        guard ended > 0 else {
            FileHandle.standardError.write(Data("medic: no silence in force on \(target)\n".utf8))
            throw ExitCode(1)
        }
        _ = try await store.append(AuditRecord(kind: .silence, target: target, message: "unsilenced \(target) by uid \(getuid())", details: ["uid": String(getuid())], actor: Caller.actor))
        print("unsilenced \(target)")
    }
}

/// `medic resume UNIT`: allows automatic action again on a target Medic stopped acting on
/// (flapping) and runs its plan again.
struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Let Medic act again on a target it stopped acting on, and run its plan again.")

    @Argument(help: "The unit.")
    var target: String

    @Option(help: "State directory of medicd.")
    var state = "/var/lib/medic"

    func run() async throws {
        let store = try openStore(state)
        _ = try await store.append(AuditRecord(
            kind: .humanCommand, target: target, message: "resume \(target) by uid \(getuid())",
            details: ["command": "resume", "uid": String(getuid())], actor: Caller.actor))
        print("asked medicd to resume \(target)")
    }
}

/// The person running the CLI, as the audit log names them.
enum Caller {
    static var actor: String {
        let uid = getuid()
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "uid \(uid)" }
        return "uid \(uid) (\(String(cString: name)))"
    }
}

/// Opens medicd's audit store for a command that writes to it.
func openStore(_ state: String) throws -> AuditStore {
    guard FileManager.default.fileExists(atPath: state + "/" + AuditStore.fileName) else {
        FileHandle.standardError.write(Data("medic: no audit log at \(state)/\(AuditStore.fileName) (has medicd run with this --state directory?)\n".utf8))
        throw ExitCode(1)
    }
    return try AuditStore(stateDirectory: state)
}
