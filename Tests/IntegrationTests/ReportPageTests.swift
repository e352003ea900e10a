import Audit
import Foundation
import MedicCore
import TestHost
import Testing

/// `medic report --format html`, opened in a real headless chromium.
@Suite("The post-mortem page, in a real browser", .serialized, .timeLimit(.minutes(5)))
struct ReportPageTests {
    private static func at(_ iso: String) -> Timestamp {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let date = formatter.date(from: iso)!
        return Timestamp(wallMicroseconds: Int64(date.timeIntervalSince1970 * 1_000_000), monotonicNanoseconds: 0)
    }

    /// An incident from its opening to its close, with a restart that succeeded.
    private static func incident(
        _ id: Int64, _ target: String, opened: String, closed: String, playbook: String = "web", extra: [AuditRecord] = []
    ) -> [AuditRecord] {
        [
            AuditRecord(kind: .incidentOpened, time: at(opened), target: target, incident: id, playbook: playbook, message: "crashed: killed by signal 9",
                        details: ["trigger": "crashed", "time_to_detect_ms": "3"]),
        ] + extra + [
            AuditRecord(kind: .stepIntent, time: at(opened), target: target, incident: id, playbook: playbook, step: "restart",
                        message: "about to restart", details: ["step": "1/1 restart"]),
            AuditRecord(kind: .stepResult, time: at(opened).adding(.milliseconds(40)), target: target, incident: id, playbook: playbook, step: "restart",
                        message: "restart succeeded: active", details: ["step": "1/1 restart", "result": "succeeded"]),
            AuditRecord(kind: .incidentClosed, time: at(closed), target: target, incident: id, playbook: playbook, message: "recovered",
                        details: ["outcome": "recovered", "time_to_recover_ms": "103", "stabilised_ms": "2000"]),
        ]
    }

    @Test("hostile content (a unit name, a journal line, a message, a fact holding <script>, </svg>, quotes) is shown as text and nothing of it runs; the harness itself sees a script that does")
    func hostileContentStaysInert() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        let target = #"evil"><script>document.title='pwned'</script>.service"#
        let message = #"</svg></style><img src=x onerror="document.body.dataset.pwned=1"> 'single' "double""#
        _ = try await store.append([
            AuditRecord(kind: .observation, target: target, incident: 1, message: message),
            AuditRecord(kind: .incidentOpened, target: target, incident: 1, playbook: "<b>bold</b>", message: message,
                        details: ["trigger": "crashed</title><script>alert(1)</script>", "time_to_detect_ms": "2"]),
            AuditRecord(kind: .stepIntent, target: target, incident: 1, playbook: "<b>bold</b>", step: "collect", message: "about to collect",
                        details: ["step": "1/2 collect"]),
            AuditRecord(kind: .stepResult, target: target, incident: 1, step: "collect", message: message,
                        details: ["step": "1/2 collect", "result": "succeeded", "evidence.journal": "<script>alert('journal')</script>\n</pre></details><svg onload=alert(2)>",
                                  "<key onclick=alert(3)>": "\"><script>alert(4)</script>"]),
            AuditRecord(kind: .stepIntent, target: target, incident: 1, step: "restart<script>", message: "about to <script>", details: ["step": "2/2 restart<script>"]),
            AuditRecord(kind: .stepResult, target: target, incident: 1, step: "restart<script>", message: message,
                        details: ["step": "2/2 restart<script>", "result": "succeeded\"><script>alert(5)</script>"]),
            AuditRecord(kind: .guardStopped, target: target, incident: 1, step: "pool", message: message, details: ["guard": "<i>capacity</i>"]),
        ])
        let page = try checkReportPage(state: dir, incident: 1)
        #expect(!page.dom.contains("<img") && !page.dom.contains("<svg onload") && !page.dom.contains("data-pwned"))
        #expect(!page.dom.contains("<b>bold") && !page.dom.contains("<i>capacity"))
        #expect(page.dom.contains(#"&lt;/svg&gt;&lt;/style&gt;&lt;img src=x onerror="document.body.dataset.pwned=1"&gt;"#), "the message is not shown as text")
        #expect(page.dom.contains("&lt;script&gt;alert('journal')&lt;/script&gt;"), "the journal line is not shown as text")
        #expect(page.dom.contains("<title>Incident 1: evil\"&gt;&lt;script&gt;document.title='pwned'&lt;/script&gt;.service — crashed&lt;/title&gt;"))
        #expect(page.lanes == [target], "\(page.lanes)")
        #expect(page.marks("marker guard") == 1)

        // The harness can fail: the same page with a script put in runs into the page's policy,
        // and the browser says so.
        let path = dir + "/tampered.html"
        #expect(try medic(["report", "1", "--state", dir, "--format", "html", "--output", dir + "/page.html"]).status == 0)
        let html = try String(contentsOfFile: dir + "/page.html", encoding: .utf8)
        try html.replacingOccurrences(of: "<body>", with: "<body><script>document.title='ran'</script>").write(toFile: path, atomically: true, encoding: .utf8)
        let tampered = try BrowserPage.load(path)
        #expect(tampered.console.contains { $0.contains("Content Security Policy") }, "\(tampered.console)")
        #expect(!tampered.dom.contains("<title>ran</title>"))
    }

    @Test("medic report --since: every incident of the window on one time axis, a lane per target, the quiet hours cut short; it prints; Markdown and JSON too")
    func window() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        _ = try await store.append(
            Self.incident(1, "old.service", opened: "2026-11-28T23:00:00.000Z", closed: "2026-11-28T23:00:02.100Z")
                + Self.incident(2, "web.service", opened: "2026-11-29T02:00:00.000Z", closed: "2026-11-29T02:00:02.100Z")
                + Self.incident(3, "api.service", opened: "2026-11-29T05:30:00.000Z", closed: "2026-11-29T05:30:02.100Z")
                + Self.incident(4, "web.service", opened: "2026-11-29T07:15:00.000Z", closed: "2026-11-29T07:15:02.100Z"))
        let path = dir + "/review.html"
        let written = try medic(["report", "--since", "2026-11-29T00:00:00Z", "--state", dir, "--format", "html", "--output", path])
        #expect(written.status == 0, "\(written.output)")
        let page = try BrowserPage.load(path)
        #expect(page.console.isEmpty, "\(page.console)")
        #expect(page.incidents == [2, 3, 4])
        #expect(page.lanes == ["web.service", "api.service"])
        #expect(page.stepMarks.count == 3 && page.marks("flag healthy") == 3)
        #expect(BrowserPage.matches(#"<g class="break">"#, in: page.dom).count == 2, "the hours between incidents are cut short")
        #expect(page.dom.contains("3h30m") && page.dom.contains("1h45m"), "a break says how long it was")
        #expect(page.screenshotTaken)
        let pdf = try #require(try BrowserPage.printed(path), "the page did not print")
        #expect(pdf.starts(with: Array("%PDF".utf8)) && pdf.count > 20_000, "\(pdf.count) bytes")

        let markdown = try medic(["report", "--since", "2026-11-29T00:00:00Z", "--state", dir])
        #expect(markdown.output.split(separator: "\n").filter { $0.hasPrefix("# Incident ") }.count == 3, "\(markdown.output)")
        let json = try medic(["report", "--since", "2026-11-29T00:00:00Z", "--state", dir, "--format", "json"])
        let reports = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]]
        #expect(reports?.count == 3)
        // A quiet window: a page that says so, not an error.
        let quiet = try medic(["report", "--since", "2026-11-29T08:00:00Z", "--state", dir, "--format", "html", "--output", dir + "/quiet.html"])
        #expect(quiet.status == 0, "\(quiet.output)")
        let quietPage = try BrowserPage.load(dir + "/quiet.html")
        #expect(quietPage.console.isEmpty && quietPage.dom.contains("No incident was opened in this window.") && quietPage.lanes.isEmpty)
        let neither = try medic(["report", "--state", dir])
        #expect(neither.status != 0 && neither.output.contains("name an incident"), "\(neither.output)")
    }

    @Test("one incident's page also draws the incidents bound up with it: the dependency it waited for, and the others the same storm held")
    func boundUpIncidents() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        let waiting = AuditRecord(
            kind: .guardStopped, time: Self.at("2026-11-29T02:00:00.010Z"), target: "app.service", incident: 2, playbook: "app", step: "restart",
            message: "restart stopped: app.service depends on db.service, which is unhealthy (incident 1)",
            details: ["guard": "dependency", "waits_for": "db.service", "waits_for_incident": "1", "result": "refused"])
        func storm(_ id: Int64, _ target: String) -> AuditRecord {
            AuditRecord(kind: .guardStopped, time: Self.at("2026-11-29T03:00:00.020Z"), target: target, incident: id, playbook: "fleet", step: "restart",
                        message: "restart stopped: storm hold on fleet", details: ["guard": "storm", "result": "refused"])
        }
        _ = try await store.append(
            Self.incident(1, "db.service", opened: "2026-11-29T01:59:59.000Z", closed: "2026-11-29T02:00:05.000Z", playbook: "db")
                + Self.incident(2, "app.service", opened: "2026-11-29T02:00:00.000Z", closed: "2026-11-29T02:00:08.000Z", playbook: "app", extra: [waiting])
                + Self.incident(3, "other.service", opened: "2026-11-29T02:00:01.000Z", closed: "2026-11-29T02:00:03.000Z", playbook: "other")
                + Self.incident(4, "w1.service", opened: "2026-11-29T03:00:00.000Z", closed: "2026-11-29T03:00:09.000Z", playbook: "fleet", extra: [storm(4, "w1.service")])
                + Self.incident(5, "w2.service", opened: "2026-11-29T03:00:00.005Z", closed: "2026-11-29T03:00:09.000Z", playbook: "fleet", extra: [storm(5, "w2.service")])
                + Self.incident(6, "w3.service", opened: "2026-11-29T03:00:00.007Z", closed: "2026-11-29T03:00:09.000Z", playbook: "fleet"))
        let victim = try checkReportPage(state: dir, incident: 2)
        #expect(victim.incidents == [2, 1] && victim.lanes == ["db.service", "app.service"], "\(victim.incidents) \(victim.lanes)")
        let parent = try checkReportPage(state: dir, incident: 1)
        #expect(parent.incidents == [1, 2])
        let alone = try checkReportPage(state: dir, incident: 3)
        #expect(alone.incidents == [3])
        let stormed = try checkReportPage(state: dir, incident: 5)
        #expect(stormed.incidents == [5, 4] && stormed.marks("marker guard") == 2, "\(stormed.incidents)")
    }
}
