import Audit
import MedicCore

/// The Markdown post-mortem draft, section by section.
public enum PostMortem {
    public static func markdown(_ story: IncidentStory) -> String {
        let s = story.summary
        let records = story.records
        var out = ["# Incident \(s.id): \(s.target) — \(s.trigger)", ""]
        out += ["## Summary", ""]
        out.append("\(s.target) (playbook \(s.playbook)) triggered '\(s.trigger)' at \(s.opened). Outcome: **\(s.status)**"
            + (s.closed.map { " at \($0)" } ?? "") + ". Steps: \(s.steps.isEmpty ? "none" : s.steps.joined(separator: ", ")).")
        out += ["", "## Impact window", ""]
        out.append("- From \(s.opened) to \(s.healthyAgain ?? s.closed ?? "(still open)")"
            + (s.healthyAgain != nil ? " (healthy again; watched until \(s.closed ?? "?") to be stable)" : ""))
        out += ["", "## Figures", ""]
        out.append("- Time to detect: \(s.timeToDetectMs.map { "\($0) ms" } ?? "unknown")")
        if let ms = story.timeToMitigateMs, let mitigated = story.mitigated, let step = records.first(where: { $0.seq == mitigated.seq })?.step {
            out.append("- Time to mitigate: \(ms) ms from the fault (first \(step) that succeeded)")
        }
        out.append("- Time to recover: \(s.timeToRecoverMs.map { DurationText.format(.milliseconds($0)) } ?? "not recovered")"
            + (s.stabilisedMs.map { " (then stable for \(DurationText.format(.milliseconds($0))) before the incident closed)" } ?? ""))
        out.append("- Escalations: \(s.escalations); guard stops: \(s.guardStops)")
        out += ["", "## Timeline (UTC)", "", "| time | kind | step | what happened |", "|---|---|---|---|"]
        for r in records {
            out.append("| \(r.time) | \(r.kind) | \(r.step ?? "") | \(r.message.split(separator: "|", omittingEmptySubsequences: false).joined(separator: "\\|")) |")
        }
        let alerts = records.filter { $0.facts["alert_fingerprint"] != nil }
        if !alerts.isEmpty {
            out += ["", "## Alerts (from Alertmanager)", ""]
            for record in alerts {
                let facts = record.facts
                let labels = facts.filter { $0.key.hasPrefix(Observation.labelPrefix) }.sorted { $0.key < $1.key }
                    .map { "\($0.key.dropFirst(Observation.labelPrefix.count))=\"\($0.value)\"" }.joined(separator: ", ")
                let annotations = facts.filter { $0.key.hasPrefix("annotation.") }.sorted { $0.key < $1.key }
                    .map { "\($0.key.dropFirst("annotation.".count)): \($0.value)" }.joined(separator: "; ")
                out.append("- \(record.time) \(facts["alert"] ?? "?") \(facts["alert_status"] ?? "") since \(facts["alert_starts_at"] ?? "?") {\(labels)}"
                    + (annotations.isEmpty ? "" : " — \(annotations)") + (facts["generator_url"].map { " (\($0))" } ?? ""))
            }
        }
        let refused = story.setbacks
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
