import ArgumentParser
import Foundation
import MedicCore
import Playbooks
import Simulation
import Posix

/// `medic simulate PLAYBOOK... --events FILE`: replays a timeline through the real engine.
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay a timeline of observations through the engine on a virtual clock.",
        discussion: """
            Prints every decision (steps, guards, escalations, incidents) the engine would make, \
            without touching systemd. The timeline is JSON lines: \
            {"at": "0s", "target": "web.service", "event": "crashed", "kind": "signal"}; \
            events: crashed, active, failed, inactive, stopped, unhealthy, healthy, \
            heartbeat-missed, heartbeat-late, host-down, host-isolated, host-returned, journal (pattern), limit (limit); \
            {"at": "5s", "target": "web.service", "fail": "restart"} makes the next restart fail.
            """)

    @Argument(help: "Playbook files or directories.")
    var paths: [String]

    @Option(help: "The timeline (JSON lines); - for standard input.")
    var events: String

    @Option(help: "How long to keep the clock running after the last event.")
    var horizon = "1h"

    @Flag(help: "Simulate as if medicd ran with --dry-run.")
    var dryRun = false

    @Flag(help: "Print one JSON object per record.")
    var json = false

    func validate() throws {
        if DurationText.parse(horizon) == nil { throw ValidationError("--horizon '\(horizon)' is not a duration") }
    }

    func run() throws {
        let loaded = PlaybookDirectory.load(files: PlaybookFiles.expand(paths))
        guard loaded.refused.isEmpty else {
            for problem in loaded.refused.flatMap(\.diagnostics.all) { print(problem) }
            throw ExitCode(1)
        }
        let text: String
        if events == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            guard let data = FileManager.default.contents(atPath: events) else {
                StandardStream.write("medic: cannot read \(events)\n", to: STDERR_FILENO)
                throw ExitCode(1)
            }
            text = String(decoding: data, as: UTF8.self)
        }
        let timeline: Timeline
        do {
            timeline = try Timeline(jsonLines: text, base: Simulator.epoch)
        } catch {
            StandardStream.write("medic: \(events): \(error)\n", to: STDERR_FILENO)
            throw ExitCode(1)
        }
        var simulator = Simulator(playbooks: loaded.playbooks, dryRun: dryRun)
        for entry in simulator.run(timeline, horizon: DurationText.parse(horizon)!) {
            let record = entry.record
            if json {
                let object: [String: String?] = [
                    "at": DurationText.format(entry.at), "kind": record.kind.rawValue, "target": record.target,
                    "incident": record.incident.map(String.init), "step": record.step, "message": record.message,
                ]
                let encoder = JSONEncoder()
                encoder.outputFormatting = .sortedKeys
                print(String(decoding: try encoder.encode(object.compactMapValues { $0 }), as: UTF8.self))
            } else {
                let at = String(format: "%9.3fs", entry.at.seconds)
                print("\(at)  \(record.kind.rawValue.padding(toLength: 15, withPad: " ", startingAt: 0))  \((record.target ?? "-").padding(toLength: 16, withPad: " ", startingAt: 0))  \(record.message)")
            }
        }
    }
}

/// Playbook paths as given: files, and directories standing for their *.yaml and *.yml files.
enum PlaybookFiles {
    static func expand(_ paths: [String]) -> [String] {
        paths.flatMap { path -> [String] in
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return [path] }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { path + "/" + $0 }
        }
    }
}
