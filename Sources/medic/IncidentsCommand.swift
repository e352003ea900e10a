import ArgumentParser
import Audit
import Foundation
import MedicCore

/// `medic incidents`: each incident with its target, trigger, status, figures and steps.
struct IncidentsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incidents",
        abstract: "List incidents: target, trigger, status, time to detect and to recover, steps taken and outcome.")

    @OptionGroup var location: StateOption

    @Option(help: "Only incidents opened in the last DURATION (e.g. 1h, 7d).")
    var since: String?

    @Flag(help: "Only incidents still open.")
    var open = false

    @Flag(help: "Print one JSON object per line.")
    var json = false

    func validate() throws {
        if let since, DurationText.parse(since) == nil {
            throw ValidationError("--since '\(since)' is not a duration; write e.g. 30m, 6h, 7d")
        }
    }

    func run() throws {
        let store = try location.openForReading()
        let since = since.flatMap(DurationText.parse).map { Timestamp.now().wallMicroseconds - $0.milliseconds * 1000 }
        var incidents = try store.incidents(sinceWallMicroseconds: since)
        if open { incidents = incidents.filter { $0.status == "open" } }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            for incident in incidents { print(String(decoding: try encoder.encode(incident), as: UTF8.self)) }
            return
        }
        let rows = incidents.map { i in
            [String(i.id), i.opened, i.target, i.trigger, i.status, i.timeToDetectMs.map { "\($0) ms" } ?? "-",
             i.timeToRecoverMs.map { DurationText.format(.milliseconds($0)) } ?? "-", i.steps.joined(separator: ", ")]
        }
        print(Table(header: ["ID", "OPENED (UTC)", "TARGET", "TRIGGER", "STATUS", "DETECT", "RECOVER", "STEPS"], rows: rows).render())
        print("\(incidents.count) incidents" + (open ? " open" : ""))
    }
}
