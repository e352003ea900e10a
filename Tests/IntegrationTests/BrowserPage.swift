import Audit
import Foundation
import MedicCore
import TestHost
import Testing

/// A page loaded in a real headless browser (Debian's chromium-headless-shell): the DOM after
/// loading, what the page wrote to the console (a Content-Security-Policy violation is one:
/// an inline script or a fetched resource), and a screenshot.
struct BrowserPage {
    /// The DOM as the browser serialised it after loading.
    let dom: String
    /// The page's console messages.
    let console: [String]
    let screenshot: String

    static let chromium = "/usr/bin/chromium-headless-shell"

    /// Loads `path` twice: once to dump its DOM, once for a screenshot of `width`×`height`.
    static func load(_ path: String, width: Int = 1280, height: Int = 900) throws -> BrowserPage {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let common = ["--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--user-data-dir=\(dir)/profile",
                      "--enable-logging=stderr", "--v=0"]
        let dump = try ChildProcess("/bin/sh", ["-c", "exec \"$0\" \"$@\" 2>\(dir)/console", chromium] + common + ["--dump-dom", "file://\(path)"],
                                    logPath: dir + "/dom")
        let dumped = dump.waitForExit(timeout: .seconds(60))
        if dumped == nil { _ = dump.stop() }
        let screenshot = path + ".png"
        let shot = try ChildProcess(chromium, common + ["--window-size=\(width),\(height)", "--screenshot=\(screenshot)", "file://\(path)"],
                                    logPath: dir + "/shot")
        if shot.waitForExit(timeout: .seconds(60)) == nil { _ = shot.stop() }
        let console = ((try? String(contentsOfFile: dir + "/console", encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.contains(":CONSOLE") }
        // MEDIC_KEEP_PAGES=DIR keeps each page and its screenshot (the README's comes from there).
        if let keep = ProcessInfo.processInfo.environment["MEDIC_KEEP_PAGES"] {
            let name = keep + "/" + URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
            try? FileManager.default.copyItem(atPath: path, toPath: name + ".html")
            try? FileManager.default.copyItem(atPath: screenshot, toPath: name + ".png")
        }
        return BrowserPage(dom: dump.output, console: console.map(String.init), screenshot: screenshot)
    }

    /// `path` printed to PDF by the browser (its print styles applied); nil if it could not.
    static func printed(_ path: String) throws -> Data? {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try ChildProcess(chromium, ["--no-sandbox", "--disable-gpu", "--user-data-dir=\(dir)/profile", "--no-pdf-header-footer",
                                              "--print-to-pdf=\(dir)/page.pdf", "file://\(path)"], logPath: dir + "/log")
        if run.waitForExit(timeout: .seconds(60)) == nil { _ = run.stop() }
        return FileManager.default.contents(atPath: dir + "/page.pdf")
    }

    /// The targets of the timeline's lanes, top to bottom.
    var lanes: [String] { Self.matches(#"<g class="lane" data-target="([^"]*)""#, in: dom).map(Self.unescape) }
    /// The record each step bar links to.
    var stepMarks: [Int64] { Self.matches(##"class="mark step [a-z]+" href="#r(\d+)""##, in: dom).compactMap { Int64($0) } }
    /// The record every mark links to.
    var markLinks: [Int64] { Self.matches(##"class="mark [^"]*" href="#r(\d+)""##, in: dom).compactMap { Int64($0) } }
    /// The records in the tables.
    var rows: Set<Int64> { Set(Self.matches(#"<tr id="r(\d+)""#, in: dom).compactMap { Int64($0) }) }
    /// The marks of one kind (`marker escalation`, `pool pool-maint`, `flag detected`, …).
    func marks(_ classes: String) -> Int { Self.matches(#"class="mark \#(classes)""#, in: dom).count }
    /// The incidents that have a section.
    var incidents: [Int64] { Self.matches(#"<section id="incident-(\d+)">"#, in: dom).compactMap { Int64($0) } }

    /// Whether the screenshot is a PNG image of some size.
    var screenshotTaken: Bool {
        guard let data = FileManager.default.contents(atPath: screenshot) else { return false }
        return data.count > 10_000 && data.starts(with: [0x89, 0x50, 0x4E, 0x47])
    }

    /// An attribute's value as the browser serialised it, unescaped.
    static func unescape(_ text: String) -> String {
        [("&quot;", "\""), ("&lt;", "<"), ("&gt;", ">"), ("&#39;", "'"), ("&nbsp;", "\u{A0}"), ("&amp;", "&")].reduce(text) {
            $0.replacingOccurrences(of: $1.0, with: $1.1)
        }
    }

    static func matches(_ pattern: String, in text: String) -> [String] {
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return [] }
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { match in
            Range(match.range(at: match.numberOfRanges > 1 ? 1 : 0), in: text).map { String(text[$0]) }
        }
    }
}

/// `medic report INCIDENT --format html` of a real incident, opened in the browser and held
/// against the audit log: a lane per target of the incidents it shows, a bar per step intent,
/// every mark linked to a row of the table, nothing on the console, no script in the DOM, and
/// a screenshot. Returns the page for the test's own checks.
@discardableResult
func checkReportPage(state: String, incident: Int64, sourceLocation: SourceLocation = #_sourceLocation) throws -> BrowserPage {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/incident-\(incident).html"
    // medicd may still be writing: the page holds at least what the log held before it was
    // written, and nothing the log did not hold after.
    let store = try AuditStore(stateDirectory: state, readOnly: true)
    let before = try store.records(AuditQuery(incident: incident))
    let written = try medic(["report", String(incident), "--state", state, "--format", "html", "--output", path])
    #expect(written.status == 0, "\(written.output)", sourceLocation: sourceLocation)
    let page = try BrowserPage.load(path)
    #expect(page.console.isEmpty, "console: \(page.console)", sourceLocation: sourceLocation)
    #expect(!page.dom.contains("<script"), sourceLocation: sourceLocation)
    #expect(page.screenshotTaken, sourceLocation: sourceLocation)
    #expect(page.incidents.first == incident, "\(page.incidents)", sourceLocation: sourceLocation)
    let after = try store.records(ofIncidents: Set(page.incidents)).filter { $0.seq! <= page.rows.max() ?? 0 }
    let targets = Set(after.compactMap(\.target))
    #expect(Set(page.lanes) == targets && page.lanes.count == targets.count, "lanes \(page.lanes), targets \(targets)", sourceLocation: sourceLocation)
    let intents = after.filter { $0.kind == AuditRecord.Kind.stepIntent.rawValue && $0.step != StepKind.notify.rawValue }
    #expect(page.stepMarks.count == intents.count, "\(page.stepMarks.count) step bars for \(intents.count) step intents", sourceLocation: sourceLocation)
    #expect(!page.markLinks.isEmpty && page.markLinks.allSatisfy(page.rows.contains), "a mark links to no row", sourceLocation: sourceLocation)
    #expect(page.rows == Set(after.compactMap(\.seq)), "the tables hold \(page.rows.count) of \(after.count) records", sourceLocation: sourceLocation)
    #expect(Set(before.compactMap(\.seq)).isSubset(of: page.rows), "records written before the page are missing from it", sourceLocation: sourceLocation)
    #expect(page.marks("flag detected") == page.incidents.count, sourceLocation: sourceLocation)
    return page
}
