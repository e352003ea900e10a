import ArgumentParser
import Audit
import Foundation
import MedicCore
import Posix

/// `medic report INCIDENT`: a post-mortem draft from the audit log.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Draft a post-mortem for an incident: summary, impact window, timeline, evidence, what was refused, figures.")

    @Argument(help: "The incident's id (see medic incidents).")
    var incident: Int64

    @OptionGroup var location: StateOption

    @Option(help: "markdown or json.")
    var format = "markdown"

    func validate() throws {
        guard ["markdown", "json"].contains(format) else { throw ValidationError("--format '\(format)' is not markdown or json") }
    }

    func run() throws {
        let store = try location.openForReading()
        let records = try store.records(AuditQuery(incident: incident))
        guard let summary = IncidentSummary.from(records).first(where: { $0.id == incident }) else {
            StandardStream.write("medic: no incident \(incident) in \(store.path)\n", to: STDERR_FILENO)
            throw ExitCode(1)
        }
        if format == "json" {
            struct Report: Encodable { var incident: IncidentSummary; var timeline: [AuditJSON.Line] }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
            print(String(decoding: try encoder.encode(Report(incident: summary, timeline: records.map(AuditJSON.fields))), as: UTF8.self))
            return
        }
        print(PostMortem.markdown(summary, records))
    }
}

/// The Markdown post-mortem draft, section by section.
enum PostMortem {
    static func markdown(_ s: IncidentSummary, _ records: [StoredRecord]) -> String {
        var out = ["# Incident \(s.id): \(s.target) — \(s.trigger)", ""]
        out += ["## Summary", ""]
        out.append("\(s.target) (playbook \(s.playbook)) triggered '\(s.trigger)' at \(s.opened). Outcome: **\(s.status)**"
            + (s.closed.map { " at \($0)" } ?? "") + ". Steps: \(s.steps.isEmpty ? "none" : s.steps.joined(separator: ", ")).")
        out += ["", "## Impact window", ""]
        out.append("- From \(s.opened) to \(s.healthyAgain ?? s.closed ?? "(still open)")"
            + (s.healthyAgain != nil ? " (healthy again; watched until \(s.closed ?? "?") to be stable)" : ""))
        out += ["", "## Figures", ""]
        out.append("- Time to detect: \(s.timeToDetectMs.map { "\($0) ms" } ?? "unknown")")
        if let mitigated = records.first(where: { $0.kind == "step-result" && $0.facts[.result] == "succeeded" && $0.step != "collect" && $0.step != "notify" }),
           let opened = records.first(where: { $0.kind == "incident-opened" }) {
            out.append("- Time to mitigate: \((mitigated.wallMicroseconds - opened.wallMicroseconds) / 1000) ms (first \(mitigated.step ?? "step") that succeeded)")
        }
        out.append("- Time to recover: \(s.timeToRecoverMs.map { DurationText.format(.milliseconds($0)) } ?? "not recovered")"
            + (s.stabilisedMs.map { " (then stable for \(DurationText.format(.milliseconds($0))) before the incident closed)" } ?? ""))
        out.append("- Escalations: \(s.escalations); guard stops: \(s.guardStops)")
        out += ["", "## Timeline (UTC)", "", "| time | kind | step | what happened |", "|---|---|---|---|"]
        for r in records {
            out.append("| \(r.time) | \(r.kind) | \(r.step ?? "") | \(r.message.replacingOccurrences(of: "|", with: "\\|")) |")
        }
        let refused = records.filter { $0.kind == "guard-stopped" || $0.facts[.result] == "interrupted" || $0.facts[.result] == "failed" }
        out += ["", "## Refused, failed or interrupted", ""]
        out += refused.isEmpty ? ["Nothing."] : refused.map { "- \($0.time) \($0.message)" }
        out += ["", "## Evidence", ""]
        let evidence = records.filter { $0.step == "collect" && $0.kind == "step-result" }
        if evidence.isEmpty { out.append("No evidence was collected (no `collect` step ran).") }
        for record in evidence {
            for key in record.facts.keys.sorted() where key.hasPrefix("evidence.") {
                out += ["### \(key.dropFirst("evidence.".count))", "", "```", record.facts[key] ?? "", "```", ""]
            }
        }
        return out.joined(separator: "\n")
    }
}
