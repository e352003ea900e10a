import Audit
import MedicCore

/// An incident's records as HTML: the table every timeline mark links into, and the evidence
/// its `collect` steps kept.
enum RecordTable {
    /// A row a record (`id="r<seq>"`), its facts folded; the evidence is left to `evidence`.
    static func html(_ records: [StoredRecord]) -> String {
        let rows = records.map { record -> String in
            let seq = record.seq ?? 0
            let facts = record.facts.filter { !$0.key.hasPrefix("evidence.") }.sorted { $0.key < $1.key }
            let folded = facts.isEmpty ? "" : "<details><summary>\(facts.count) fact\(facts.count == 1 ? "" : "s")</summary><pre>"
                + facts.map { "\(Markup.escape($0.key)): \(Markup.escape($0.value))" }.joined(separator: "\n") + "</pre></details>"
            let cells = [
                "<td class=\"seq\"><a href=\"#r\(seq)\">\(seq)</a></td>", "<td class=\"time\">\(TimelineDrawing.clock(record.wallMicroseconds))</td>",
                "<td>\(Markup.escape(record.kind))</td>", "<td>\(Markup.escape(record.step ?? ""))</td>",
                "<td>\(Markup.escape(record.message))\(record.actor == "medicd" ? "" : " <em>(by \(Markup.escape(record.actor)))</em>")\(folded)</td>",
            ]
            return "<tr id=\"r\(seq)\" data-kind=\"\(Markup.escape(record.kind))\">\(cells.joined())</tr>"
        }
        return "<div class=\"scroll\"><table class=\"records\"><thead><tr><th>#</th><th>time (UTC)</th><th>kind</th><th>step</th><th>what happened</th></tr></thead>\n<tbody>\n"
            + rows.joined(separator: "\n") + "\n</tbody></table></div>"
    }

    /// What each `collect` step kept (journal lines, unit properties, pool, host figures), folded.
    static func evidence(_ records: [StoredRecord]) -> String {
        let bundles = records.filter { $0.step == StepKind.collect.rawValue && $0.kind == AuditRecord.Kind.stepResult.rawValue }
        guard !bundles.isEmpty else { return "<p>No evidence was collected (no <code>collect</code> step ran).</p>" }
        var out: [String] = []
        for record in bundles {
            let facts = record.facts
            for key in facts.keys.sorted() where key.hasPrefix("evidence.") {
                let text = facts[key] ?? ""
                let lines = text.isEmpty ? 0 : text.split(separator: "\n", omittingEmptySubsequences: false).count
                out.append("<details><summary>\(Markup.escape(String(key.dropFirst("evidence.".count)))) — \(lines) line\(lines == 1 ? "" : "s"), "
                    + "<a href=\"#r\(record.seq ?? 0)\">record #\(record.seq ?? 0)</a></summary><pre>\(Markup.escape(text))</pre></details>")
            }
        }
        return out.joined(separator: "\n")
    }
}
