import Foundation
import MedicCore
import Playbooks
import Testing

private func parse(_ text: String) -> Result<Playbook, Diagnostics> {
    PlaybookParser.parse(data: Array(text.utf8), file: "test.yaml")
}

private func problems(_ text: String) -> [String] {
    guard case .failure(let diagnostics) = parse(text) else { return [] }
    return diagnostics.all.map(\.description)
}

@Suite("Playbook parsing")
struct PlaybookParserTests {
    @Test("a valid playbook becomes the model, with defaults filled in")
    func valid() throws {
        let playbook = try parse("""
            playbook: web
            targets:
              - unit: web@1.service
              - unit: api.service
            on:
              - when: crashed
                do:
                  - restart
                  - verify: { active-for: 1m30s }
            """).get()
        #expect(playbook.name == "web")
        #expect(playbook.targets.map(\.unit) == ["web@1.service", "api.service"])
        #expect(playbook.rule(for: .crashed)?.steps == [.restart(timeout: .seconds(30)), .verify(activeFor: .seconds(90), timeout: .seconds(10))])
        #expect(playbook.contentHash.count == 64)
    }

    @Test("every problem is reported, each at its line and column")
    func allProblems() {
        let found = problems("""
            playbook: web
            targets:
              - unit: web
              - unti: x.service
            on:
              - when: crashd
                do: []
              - when: crashed
                do:
                  - restart: { timeout: soon, retries: 3 }
                  - verify: {}
            """)
        #expect(found.contains("test.yaml:3:11: 'web' is not a valid unit name: it needs a type suffix, e.g. 'web.service'"))
        #expect(found.contains { $0.hasPrefix("test.yaml:4:5: unknown key 'unti' in a target (did you mean 'unit'?)") })
        #expect(found.contains { $0.hasPrefix("test.yaml:6:11: unknown trigger 'crashd' (did you mean 'crashed'?)") })
        #expect(found.contains("test.yaml:7:9: 'do' is empty; give at least one step"))
        #expect(found.contains { $0.hasPrefix("test.yaml:10:29: 'timeout': 'soon' is not a duration") })
        #expect(found.contains { $0.hasPrefix("test.yaml:10:35: unknown key 'retries' in 'restart'") })
        #expect(found.contains("test.yaml:11:17: 'verify' is missing required key 'active-for'"))
    }

    @Test("durations must carry units", arguments: [
        ("500ms", 500), ("30s", 30_000), ("10m", 600_000), ("6h", 21_600_000), ("1d", 86_400_000), ("1m30s", 90_000), ("1.5s", 1500),
    ])
    func durations(text: String, milliseconds: Int64) {
        #expect(DurationText.parse(text)?.milliseconds == milliseconds)
    }

    @Test("bare numbers and unknown units are not durations", arguments: ["5", "", "10 minutes", "s", "5y", "-3s", "1e9s"])
    func badDurations(text: String) {
        #expect(DurationText.parse(text) == nil)
    }

    @Test("hostile files are refused quickly with a clear message", arguments: [
        ("empty", Array("  \n".utf8), "file is empty"),
        ("binary", [0x7f, 0x45, 0x4c, 0x46, 0x00, 0x01], "file is binary"),
        ("not UTF-8", [0x70, 0x3a, 0x20, 0xff, 0xfe], "not valid UTF-8"),
        ("too large", Array(repeating: UInt8(ascii: "#"), count: PlaybookParser.maximumFileSize + 1), "larger than"),
        ("alias bomb", Array(aliasBomb.utf8), "alias bomb"),
        ("deep nesting", Array((String(repeating: "[", count: 200) + String(repeating: "]", count: 200)).utf8), "levels"),
        ("not a mapping", Array("- just\n- a list\n".utf8), "must be a mapping"),
    ])
    func hostile(name: String, bytes: [UInt8], expected: String) {
        let started = ContinuousClock.now
        let result = PlaybookParser.parse(data: bytes, file: "hostile.yaml")
        #expect(ContinuousClock.now - started < .seconds(2), "\(name) took too long")
        guard case .failure(let diagnostics) = result else {
            Issue.record("\(name) was accepted")
            return
        }
        #expect(diagnostics.description.contains(expected), "\(name): \(diagnostics)")
    }
}

/// The billion laughs, in YAML.
let aliasBomb = """
    a: &a ["x","x","x","x","x","x","x","x","x"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    """

@Suite("Playbook directories")
struct PlaybookDirectoryTests {
    @Test("a unit claimed by two playbooks is refused in the second file")
    func conflictingTargets() throws {
        let dir = NSTemporaryDirectory() + "/medic-playbooks-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let body = "targets:\n  - unit: web.service\non:\n  - when: crashed\n    do: [restart]\n"
        try ("playbook: a\n" + body).write(toFile: dir + "/a.yaml", atomically: true, encoding: .utf8)
        try ("playbook: b\n" + body).write(toFile: dir + "/b.yaml", atomically: true, encoding: .utf8)
        try "not a playbook".write(toFile: dir + "/notes.txt", atomically: true, encoding: .utf8)
        let loaded = try PlaybookDirectory.load(dir)
        #expect(loaded.playbooks.map(\.name) == ["a"])
        #expect(loaded.refused.count == 1)
        #expect(loaded.refused.first?.diagnostics.description.contains("unit web.service is already a target of \(dir)/a.yaml") == true)
    }

    @Test("a missing directory is an error that names it")
    func missing() {
        #expect(throws: PlaybookDirectory.LoadError.self) { try PlaybookDirectory.load("/nonexistent/medic") }
    }
}
