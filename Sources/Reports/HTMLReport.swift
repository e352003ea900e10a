import Audit
import MedicCore

/// The post-mortem as one self-contained HTML page: styles and SVG inline, no script, nothing
/// fetched from anywhere (its Content-Security-Policy forbids both), so it reads offline, prints,
/// and shows whatever a record holds as text.
public enum HTMLReport {
    /// What the page says of the audit chain in its footer.
    public enum Chain: Sendable {
        case verified(AuditChain.Verification)
        case unreadable(String)
    }

    /// The page for `stories`: one incident and those bound up with it (`window` nil), or every
    /// incident opened in `window`, on one time axis.
    public static func page(_ stories: [IncidentStory], window: (since: Int64, until: Int64)? = nil, chain: Chain, source: String, written: Timestamp) -> String {
        let title: String
        var out: [String] = []
        if let window {
            title = "Incidents from \(Self.time(window.since)) to \(Self.time(window.until))"
            out += ["<h1>\(Markup.escape(title))</h1>", overview(stories)]
        } else if let main = stories.first {
            title = "Incident \(main.summary.id): \(main.summary.target) — \(main.summary.trigger)"
            out += ["<h1>\(Markup.escape(title))</h1>", introduction(main)]
            if stories.count > 1 {
                let others = stories.dropFirst().map { "<a href=\"#incident-\($0.summary.id)\">incident \($0.summary.id)</a> (\(Markup.escape($0.summary.target)), \(Markup.escape($0.summary.trigger)))" }
                out.append("<p>Bound up with it (a dependency or the same storm): \(others.joined(separator: ", ")).</p>")
            }
        } else {
            title = "No incidents"
        }
        let timeline = TimelineDrawing.draw(stories)
        out += ["<h2 id=\"timeline\">Timeline</h2>", "<div class=\"timeline scroll\">", timeline.svg, "</div>", legend]
        for story in stories { out.append(section(story, withIntroduction: window != nil)) }
        if stories.isEmpty { out.append("<p>No incident was opened in this window.</p>") }
        out.append(review)
        out.append(footer(chain: chain, shown: stories.flatMap(\.records).compactMap(\.seq).max(), source: source, written: written))
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="generator" content="medic \(MedicVersion.string)">
            <title>\(Markup.escape(title)) · Medic</title>
            <style>
            \(ReportStyle.css)
            \(timeline.css)
            </style></head><body>
            \(out.joined(separator: "\n"))
            </body></html>

            """
    }

    /// The summary line, the impact window, and the figures.
    private static func introduction(_ story: IncidentStory) -> String {
        let s = story.summary
        let opened = story.records.first { $0.kind == AuditRecord.Kind.incidentOpened.rawValue }
        var line = "<strong>\(Markup.escape(s.target))</strong> on \(Markup.escape(story.host)) broke at \(time(story.impactStart))"
        if let opened { line += " — \(Markup.escape(opened.message))" }
        line += ". Playbook <code>\(Markup.escape(s.playbook))</code>; steps: \(Markup.escape(s.steps.isEmpty ? "none" : s.steps.joined(separator: ", ")))."
        line += " Outcome: <span class=\"status \(s.status == "open" ? "open" : s.status.hasPrefix("recovered") ? "recovered" : "")\">\(Markup.escape(s.status))</span>"
        line += story.closed.map { " at \(time($0.at))" } ?? ""
        let impact: String
        if let healthy = story.healthyAgain {
            impact = "Impact: \(time(story.impactStart)) to \(time(healthy.at)) (\(TimelineDrawing.duration(healthy.at - story.impactStart)))"
                + (s.stabilisedMs.map { "; then watched for \(DurationText.format(.milliseconds($0))) to be stable before the incident closed" } ?? "")
        } else if let closed = story.closed {
            impact = "Impact: from \(time(story.impactStart)); the incident closed \(Markup.escape(s.status)) at \(time(closed.at)) without the target being healthy again"
        } else {
            impact = "Impact: from \(time(story.impactStart)), still open when this page was written"
        }
        let steps = story.steps.count
        let figures: [(String, String)] = [
            ("Time to detect", story.timeToDetectMs.map(TimelineDrawing.figure) ?? "unknown"),
            ("Time to mitigate", story.timeToMitigateMs.map(TimelineDrawing.figure) ?? "not mitigated"),
            ("Time to recover", story.timeToRecoverMs.map(TimelineDrawing.figure) ?? "not recovered"),
            ("Steps run", String(steps)),
            ("Guard stops", String(s.guardStops)),
            ("Escalations", String(s.escalations)),
        ]
        let cards = figures.map { name, value in
            let word = !value.contains { $0.isNumber }
            return "<div class=\"figure\"><div class=\"value\(word ? " word" : "")\">\(Markup.escape(value))</div><div class=\"name\">\(name)</div></div>"
        }
        return "<p class=\"summary\">\(line).</p>\n<p>\(impact). Times are UTC.</p>\n<div class=\"figures\">\(cards.joined())</div>"
    }

    /// Every incident of a window in a table.
    private static func overview(_ stories: [IncidentStory]) -> String {
        let rows = stories.map { story -> String in
            let s = story.summary
            let cells = [
                "<a href=\"#incident-\(s.id)\">\(s.id)</a>", Markup.escape(s.target), Markup.escape(story.host), Markup.escape(s.trigger), Markup.escape(s.status),
                time(story.impactStart), story.timeToDetectMs.map(TimelineDrawing.figure) ?? "–",
                story.timeToMitigateMs.map(TimelineDrawing.figure) ?? "–", story.timeToRecoverMs.map(TimelineDrawing.figure) ?? "–",
            ]
            return "<tr>" + cells.map { "<td>\($0)</td>" }.joined() + "</tr>"
        }
        let header = ["#", "target", "host", "trigger", "outcome", "broke at", "detect", "mitigate", "recover"].map { "<th>\($0)</th>" }.joined()
        return "<p>\(stories.count) incident\(stories.count == 1 ? "" : "s"). Times are UTC.</p>\n<div class=\"scroll\"><table><thead><tr>\(header)</tr></thead><tbody>\(rows.joined(separator: "\n"))</tbody></table></div>"
    }

    /// An incident's records, what was refused, failed or interrupted, and its evidence.
    private static func section(_ story: IncidentStory, withIntroduction: Bool) -> String {
        let s = story.summary
        var out = ["<section id=\"incident-\(s.id)\">", "<h2>Incident \(s.id): \(Markup.escape(s.target)) — \(Markup.escape(s.trigger))</h2>"]
        if withIntroduction { out.append(introduction(story)) }
        out += ["<h3>Records</h3>", RecordTable.html(story.records)]
        let refused = story.setbacks
        out.append("<h3>Refused, failed or interrupted</h3>")
        out.append(refused.isEmpty ? "<p>Nothing.</p>" : "<ul>" + refused.map {
            "<li><a href=\"#r\($0.seq ?? 0)\">#\($0.seq ?? 0)</a> \(time($0.wallMicroseconds)) \(Markup.escape($0.message))</li>"
        }.joined() + "</ul>")
        out.append("<h3>Evidence</h3>")
        out.append(RecordTable.evidence(story.records))
        out.append("</section>")
        return out.joined(separator: "\n")
    }

    private static let legend = """
        <ul class="legend"><li><i style="background:#fde2e1"></i>impact</li><li><i style="background:#1f6feb"></i>detected</li>\
        <li><i style="background:#e3a008"></i>mitigated</li><li><i style="background:#2e9e5b"></i>healthy again · step succeeded · in service</li>\
        <li><i style="background:#d64541"></i>step failed · escalation ▲</li><li><i style="background:#8e44ad"></i>refused · guard stop ◆</li>\
        <li><i style="background:#e67e22"></i>interrupted</li><li><i style="background:#9aa5b1"></i>dry-run</li>\
        <li><i style="background:#1f6feb;border-radius:6px"></i>notification</li><li><i style="background:#e3a008"></i>drained</li>\
        <li><i style="background:#7a7a7a"></i>maintenance</li></ul>
        <p class="legend">Hover over or focus (Tab) a mark to see its record; select it to go to the record below.</p>
        """

    /// The sections a review fills in, as the SRE post-mortem template has them.
    private static let review = """
        <h2 id="review">Review</h2>
        <h3>Root cause</h3><div class="blank">To be written in the review: why it broke, and why then.</div>
        <h3>Action items</h3>
        <div class="scroll"><table><thead><tr><th>action</th><th>type (mitigate, prevent, detect)</th><th>owner</th><th>due</th><th>ticket</th></tr></thead>
        <tbody><tr><td>&nbsp;</td><td></td><td></td><td></td><td></td></tr><tr><td>&nbsp;</td><td></td><td></td><td></td><td></td></tr></tbody></table></div>
        <h3>What went well</h3><div class="blank">&nbsp;</div>
        <h3>What went badly</h3><div class="blank">&nbsp;</div>
        <h3>Where we got lucky</h3><div class="blank">&nbsp;</div>
        """

    private static func footer(chain: Chain, shown: Int64?, source: String, written: Timestamp) -> String {
        let verdict: String
        switch chain {
        case .verified(let result):
            if let problem = result.problem {
                verdict = "<span class=\"tampered\">The audit chain did not verify</span> when this page was written: TAMPERED at record \(problem.seq): \(Markup.escape(problem.description))."
            } else {
                let range = result.first.map { "records \($0)–\(result.last ?? $0)" } ?? "no records"
                verdict = "<span class=\"verified\">The audit chain verified</span> when this page was written: \(result.records) \(range) intact"
                    + (result.anchored ? " (older records pruned; anchored)" : "") + "."
            }
        case .unreadable(let error):
            verdict = "<span class=\"tampered\">The audit chain could not be checked</span>: \(Markup.escape(error))."
        }
        let upTo = shown.map { " This page shows records up to #\($0)." } ?? ""
        return "<footer><p>\(verdict)\(upTo) Check it again, with the journal's witnesses: <code>medic audit verify</code>.</p>"
            + "<p>Written by medic \(MedicVersion.string) from \(Markup.escape(source)) at \(Markup.escape(written.iso8601)). Times are UTC.</p></footer>"
    }

    static func time(_ microseconds: Int64) -> String {
        String(Timestamp(wallMicroseconds: microseconds, monotonicNanoseconds: 0).iso8601.compactMap { $0 == "T" ? " " : $0 == "Z" ? nil : $0 })
    }
}
