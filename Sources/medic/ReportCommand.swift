import ArgumentParser
import Audit
import Foundation
import MedicCore
import Posix
import Reports

/// `medic report INCIDENT` or `medic report --since 24h`: a post-mortem draft from the audit log.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Draft a post-mortem for an incident, or for every incident of a window: summary, impact window, timeline, evidence, what was refused, figures.",
        discussion: """
            --format html writes one self-contained page (styles and SVG inline, no script, nothing
            fetched) with the timeline drawn: a lane per target, the impact band, detection,
            mitigation and recovery, each step from intent to result, guard stops, escalations,
            notifications and pool states. For one incident it also draws the incidents bound up
            with it (a dependency, or the same storm). Example:
              medic report 12 --format html --output incident-12.html
              medic report --since 24h --format html --output morning-review.html
            """)

    @Argument(help: "The incident's id (see medic incidents).")
    var incident: Int64?

    @Option(help: "Every incident opened since then instead: a DURATION ago (24h) or a UTC time (2026-11-21T10:00:00Z).")
    var since: String?

    @OptionGroup var location: StateOption

    @Option(help: "markdown, json or html.")
    var format = "markdown"

    @Option(name: [.customShort("o"), .long], help: "Write the report to FILE instead of standard output.")
    var output: String?

    func validate() throws {
        guard ["markdown", "json", "html"].contains(format) else { throw ValidationError("--format '\(format)' is not markdown, json or html") }
        if let since, PointInTime.microseconds(since) == nil {
            throw ValidationError("--since '\(since)' is not a duration or a UTC time; write e.g. 30m, 24h, 2d or 2026-11-21T10:00:00Z")
        }
        switch (incident, since) {
        case (nil, nil): throw ValidationError("name an incident (medic report 12) or a window (medic report --since 24h)")
        case (.some, .some): throw ValidationError("give an incident or --since, not both")
        default: break
        }
    }

    func run() throws {
        let store = try location.openForReading()
        let now = Timestamp.now()
        let stories: [IncidentStory]
        var window: (since: Int64, until: Int64)?
        if let incident {
            guard let found = try IncidentSelection.incident(incident, in: store, now: now.wallMicroseconds) else {
                StandardStream.write("medic: no incident \(incident) in \(store.path)\n", to: STDERR_FILENO)
                throw ExitCode(1)
            }
            stories = found
        } else {
            let start = PointInTime.microseconds(since ?? "") ?? 0
            window = (start, now.wallMicroseconds)
            stories = try IncidentSelection.since(start, in: store, now: now.wallMicroseconds)
        }
        let text: String
        switch format {
        case "json":
            struct Report: Encodable { var incident: IncidentSummary; var timeline: [AuditJSON.Line] }
            let reports = stories.map { Report(incident: $0.summary, timeline: $0.records.map(AuditJSON.fields)) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
            let data = incident != nil ? try encoder.encode(reports[0]) : try encoder.encode(reports)
            text = String(decoding: data, as: UTF8.self) + "\n"
        case "html":
            let chain: HTMLReport.Chain
            do { chain = .verified(try store.verify()) } catch { chain = .unreadable("\(error)") }
            text = HTMLReport.page(stories, window: window, chain: chain, source: store.path, written: now)
        default:
            let drafts = incident != nil ? [stories[0]] : stories
            text = drafts.isEmpty ? "No incident was opened since \(since ?? "then").\n" : drafts.map(PostMortem.markdown).joined(separator: "\n\n---\n\n") + "\n"
        }
        guard let output else {
            StandardStream.write(text)
            return
        }
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
        } catch {
            StandardStream.write("medic: cannot write the report to \(output): \(error.localizedDescription)\n", to: STDERR_FILENO)
            throw ExitCode(1)
        }
        StandardStream.write("medic: wrote \(output)\n", to: STDERR_FILENO)
    }
}
