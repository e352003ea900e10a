import Audit
import Foundation
import GRDB
import MedicCore
import TestHost
import Testing

@Suite("medic CLI", .timeLimit(.minutes(5)))
struct CLITests {
    @Test("medic check accepts every shipped playbook")
    func shippedPlaybooksAreValid() throws {
        let (status, output) = try medic(["check", Paths.packageRoot + "/playbooks"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("web-backend.yaml: ok: playbook web-backend"))
    }

    @Test("medic check refuses a broken playbook with file:line:column for every problem")
    func brokenPlaybook() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/broken.yaml"
        try """
            playbook: broken
            tragets:
              - unit: web.service
            on:
              - when: crashed
                do:
                  - restrat: { timeout: 30s }
                  - verify: { healthy: soon }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let (status, output) = try medic(["check", file])
        #expect(status == 1)
        #expect(output.contains("\(file):2:1: unknown key 'tragets' in a playbook (did you mean 'targets'?)"))
        #expect(output.contains("\(file):1:1: a playbook is missing required key 'targets'"))
        #expect(output.contains("\(file):7:9: unknown step 'restrat' (did you mean 'restart'?)"))
        #expect(output.contains("\(file):8:28: 'healthy' must be 'within DURATION'"))

        let json = try medic(["check", "--json", file])
        #expect(json.status == 1)
        let problems = try JSONDecoder().decode([[String: AnyCodable]].self, from: Data(json.output.utf8))
        #expect(problems.count == 4)
        #expect(problems.contains { $0["line"]?.int == 7 && $0["column"]?.int == 9 })
    }

    @Test("medic check reports YAML syntax errors with their position")
    func syntaxError() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "playbook: x\ntargets: [ unit: a.service\n".write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let (status, output) = try medic(["check", dir + "/bad.yaml"])
        #expect(status == 1)
        #expect(output.hasPrefix("\(dir)/bad.yaml:3:1: YAML syntax"), "\(output)")
    }

    @Test("medic check validates the config and its playbooks together, with the daemon's ownership rules")
    func checkConfigAndPlaybooks() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755)
        try FileManager.default.createDirectory(atPath: dir + "/playbooks", withIntermediateDirectories: true)
        try """
            playbook: web
            targets: [ { unit: web.service } ]
            on:
              - when: crashed
                do: [ restart, { notify: oncall } ]
            """.write(toFile: dir + "/playbooks/web.yaml", atomically: true, encoding: .utf8)
        try """
            playbooks: \(dir)/playbooks
            receivers: { oncall: { journal: crit } }
            """.write(toFile: dir + "/medic.yaml", atomically: true, encoding: .utf8)
        // The playbook alone names a receiver only the config defines.
        #expect(try medic(["check", dir + "/playbooks"]).status == 1)
        let together = try medic(["check", "--config", dir + "/medic.yaml"])
        #expect(together.status == 0, "\(together.output)")
        #expect(together.output.contains("\(dir)/medic.yaml: ok: config"))
        #expect(together.output.contains("\(dir)/playbooks/web.yaml: ok: playbook web"))

        // What medicd would refuse, medic check refuses: a config others can write, a
        // playbook directory others can write, a mistake in the config.
        chmod(dir + "/medic.yaml", 0o666)
        let open = try medic(["check", "--config", dir + "/medic.yaml"])
        #expect(open.status == 1)
        #expect(open.output.contains("\(dir)/medic.yaml:1:1: refused: \(dir)/medic.yaml is writable by group or others (mode 0666)"), "\(open.output)")
        chmod(dir + "/medic.yaml", 0o644)
        chmod(dir + "/playbooks", 0o777)
        let openDirectory = try medic(["check", "--config", dir + "/medic.yaml"])
        #expect(openDirectory.status == 1)
        #expect(openDirectory.output.contains("\(dir)/playbooks is writable by group or others (mode 0777)"), "\(openDirectory.output)")
        chmod(dir + "/playbooks", 0o755)
        try "playbooks: \(dir)/playbooks\nsampling: { interval: 1 }\n".write(toFile: dir + "/medic.yaml", atomically: true, encoding: .utf8)
        let wrong = try medic(["check", "--config", dir + "/medic.yaml"])
        #expect(wrong.status == 1)
        #expect(wrong.output.contains("\(dir)/medic.yaml:2:23: 'sampling.interval': '1' is not a duration"), "\(wrong.output)")
    }

    @Test("medic audit prints a table, one JSON object a line, and filters by unit and time")
    func auditOutput() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        let old = Timestamp(wallMicroseconds: Timestamp.now().wallMicroseconds - 3_600_000_000, monotonicNanoseconds: 1)
        _ = try await store.append([
            AuditRecord(kind: .observation, time: old, target: "old.service", message: "an hour ago"),
            AuditRecord(kind: .observation, target: "web.service", message: "main process 42 killed by signal 9 (SIGKILL)", details: ["Result": "signal"]),
            AuditRecord(kind: .stepIntent, target: "web.service", incident: 2, step: "restart", message: "about to restart"),
        ])
        let table = try medic(["audit", "--state", dir])
        #expect(table.status == 0)
        #expect(table.output.contains("SEQ"))
        #expect(table.output.contains("killed by signal 9"))
        #expect(table.output.contains("3 records"))

        let lines = try medic(["audit", "--state", dir, "--json", "--unit", "web.service"]).output.split(separator: "\n")
        #expect(lines.count == 2)
        let first = try JSONDecoder().decode([String: AnyCodable].self, from: Data(lines[0].utf8))
        #expect(first["kind"]?.string == "observation")
        #expect(first["details"]?.object?["Result"] == "signal")

        let recent = try medic(["audit", "--state", dir, "--since", "10m"])
        #expect(!recent.output.contains("an hour ago"))
        #expect(recent.output.contains("2 records"))

        let older = try medic(["audit", "--state", dir, "--until", "30m"])
        #expect(older.output.contains("an hour ago") && older.output.contains("1 records"), "\(older.output)")
        let between = try medic(["audit", "--state", dir, "--since", old.iso8601, "--until", "30m"])
        #expect(between.output.contains("1 records"), "\(between.output)")

        let bad = try medic(["audit", "--state", dir, "--since", "ten minutes"])
        #expect(bad.status != 0)
        #expect(bad.output.contains("--since 'ten minutes' is not a duration or a UTC time"))

        // -f prints what is written after it started, while the writer goes on.
        let follow = try ChildProcess(Paths.medic, ["audit", "-f", "--json", "--state", dir], logPath: dir + "/follow.log")
        defer { follow.stop() }
        #expect(await eventually { follow.output.contains("about to restart") })
        try await store.append(AuditRecord(kind: .stepResult, target: "web.service", incident: 2, step: "restart", message: "restart succeeded: written later"))
        #expect(await eventually(timeout: .seconds(5)) { follow.output.contains("restart succeeded: written later") }, "\(follow.output)")

        let missing = try medic(["audit", "--state", dir + "/nowhere"])
        #expect(missing.status == 1)
        #expect(missing.output.contains("no audit log at \(dir)/nowhere/audit.sqlite"))
    }

    @Test("medic audit verify: exit 0 on an intact chain, 1 naming the record an edit broke")
    func auditVerify() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        for i in 1...5 { try await store.append(AuditRecord(kind: .observation, target: "web.service", message: "observation \(i)")) }
        let intact = try medic(["audit", "verify", "--state", dir])
        #expect(intact.status == 0 && intact.output.contains("chain intact, 5 records 1–5"), "\(intact.output)")
        let raw = try DatabaseQueue(path: dir + "/audit.sqlite")
        try await raw.write { try $0.execute(sql: "UPDATE record SET message = 'all quiet' WHERE seq = 3") }
        let tampered = try medic(["audit", "verify", "--state", dir])
        #expect(tampered.status == 1)
        #expect(tampered.output.contains("TAMPERED at record 3: record 3 was changed after it was written"), "\(tampered.output)")
    }

    @Test("a corrupted audit log: a clear message and exit 1 from every reading command, never a crash")
    func corrupted() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31) }).write(to: URL(fileURLWithPath: dir + "/audit.sqlite"))
        for command in [["audit"], ["audit", "verify"], ["incidents"], ["report", "1"]] {
            let result = try medic(command + ["--state", dir])
            #expect(result.status == 1, "\(command): \(result.output)")
            #expect(result.output.hasPrefix("medic: ") && result.output.contains("\(dir)/audit.sqlite") && result.output.contains("not a database"),
                    "\(command): \(result.output)")
        }
    }

    @Test("medic incidents: each incident with its trigger, status, figures and steps; --open and --json")
    func incidents() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        _ = try await store.append([
            AuditRecord(kind: .incidentOpened, target: "web.service", incident: 1, playbook: "web", message: "crashed",
                        details: ["trigger": "crashed", "time_to_detect_ms": "2"]),
            AuditRecord(kind: .stepResult, target: "web.service", incident: 1, step: "pool", message: "pool succeeded", details: ["result": "succeeded"]),
            AuditRecord(kind: .stepResult, target: "web.service", incident: 1, step: "restart", message: "restart succeeded", details: ["result": "succeeded"]),
            AuditRecord(kind: .incidentClosed, target: "web.service", incident: 1, playbook: "web", message: "recovered",
                        details: ["outcome": "recovered", "time_to_recover_ms": "1500"]),
            AuditRecord(kind: .incidentOpened, target: "api.service", incident: 2, playbook: "api", message: "unhealthy", details: ["trigger": "unhealthy"]),
            AuditRecord(kind: .guardStopped, target: "api.service", incident: 2, step: "pool", message: "pool stopped", details: ["guard": "capacity"]),
        ])
        let table = try medic(["incidents", "--state", dir])
        #expect(table.status == 0)
        #expect(table.output.contains("recovered") && table.output.contains("1s500ms") && table.output.contains("pool: succeeded, restart: succeeded"), "\(table.output)")
        #expect(table.output.contains("pool: refused (capacity)") && table.output.contains("2 incidents"))
        let open = try medic(["incidents", "--state", dir, "--open", "--json"]).output.split(separator: "\n")
        #expect(open.count == 1)
        let incident = try JSONDecoder().decode([String: AnyCodable].self, from: Data(open[0].utf8))
        #expect(incident["target"]?.string == "api.service" && incident["status"]?.string == "open")
    }

    @Test("medic report: a post-mortem draft, section by section, in Markdown and JSON")
    func report() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        _ = try await store.append([
            AuditRecord(kind: .observation, target: "web.service", incident: 1, message: "main process 42 killed by signal 9 (SIGKILL)"),
            AuditRecord(kind: .incidentOpened, target: "web.service", incident: 1, playbook: "web", message: "crashed",
                        details: ["trigger": "crashed", "time_to_detect_ms": "2"]),
            AuditRecord(kind: .stepResult, target: "web.service", incident: 1, step: "collect", message: "collect succeeded",
                        details: ["result": "succeeded", "evidence.journal": "12:00:00 out of memory | again"]),
            AuditRecord(kind: .guardStopped, target: "web.service", incident: 1, step: "pool", message: "pool stopped: taking web/s1 out would leave 1 of 3",
                        details: ["guard": "capacity"]),
            AuditRecord(kind: .stepResult, target: "web.service", incident: 1, step: "restart", message: "restart succeeded: active", details: ["result": "succeeded"]),
            AuditRecord(kind: .incidentClosed, target: "web.service", incident: 1, playbook: "web", message: "recovered",
                        details: ["outcome": "recovered", "time_to_recover_ms": "1500"]),
        ])
        let markdown = try medic(["report", "1", "--state", dir])
        #expect(markdown.status == 0, "\(markdown.output)")
        let sections = markdown.output.split(separator: "\n").filter { $0.hasPrefix("## ") }.map(String.init)
        #expect(sections == ["## Summary", "## Impact window", "## Figures", "## Timeline (UTC)", "## Refused, failed or interrupted", "## Evidence"])
        #expect(markdown.output.hasPrefix("# Incident 1: web.service — crashed"))
        #expect(markdown.output.contains("Outcome: **recovered**"))
        #expect(markdown.output.contains("- Time to detect: 2 ms") && markdown.output.contains("- Time to recover: 1s500ms"))
        #expect(markdown.output.contains("| observation |  | main process 42 killed by signal 9 (SIGKILL) |"))
        #expect(markdown.output.contains("pool stopped: taking web/s1 out would leave 1 of 3"))
        #expect(markdown.output.contains("### journal\n\n```\n12:00:00 out of memory | again\n```"))
        let json = try medic(["report", "1", "--state", dir, "--format", "json"])
        let object = try JSONDecoder().decode([String: AnyCodable].self, from: Data(json.output.utf8))
        #expect(object["incident"] != nil && object["timeline"] != nil)
        let missing = try medic(["report", "7", "--state", dir])
        #expect(missing.status == 1 && missing.output.contains("no incident 7"))
    }
}

@Suite("Benchmarks, smoke run", .timeLimit(.minutes(20)))
struct BenchmarkSmokeTests {
    @Test("medic-compare --quick: every scenario runs, every contender does its job, and the figures are printed")
    func compareQuick() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try ChildProcess(Paths.products + "/medic-compare", ["--quick"], logPath: dir + "/out")
        #expect(run.waitForExit(timeout: .seconds(900)) == 0, "\(run.output)")
        print(run.output)
        let lines = run.output.split(separator: "\n")
        #expect(run.output.hasPrefix("machine: "))
        for scenario in 1...10 { #expect(lines.contains { $0.hasPrefix("\(scenario). ") }, "no scenario \(scenario)") }
        // 1, 2 and 4: a killed, a hung and a leaking backend back, each contender.
        for contender in ["Medic ", "systemd ", "monit ", "supervisord "] {
            #expect(lines.contains { $0.hasPrefix(contender) && $0.contains(" / ") }, "no figures for \(contender)")
        }
        #expect(!run.output.contains("never"))
        // 3: HAProxy alone and with Medic, for each fault.
        for fault in ["kill -9", "SIGSTOP (a hang)", "answers 503"] {
            #expect(lines.filter { $0.hasPrefix(fault) && $0.contains("HAProxy + Medic") }.count == 1, "\(fault) with Medic")
            #expect(lines.filter { $0.hasPrefix(fault) && $0.contains("HAProxy alone") }.count == 3, "\(fault) alone: fast checks, with redispatch, with retry-on")
        }
        // 9: the same faults behind Varnish and nginx, each balancer alone and with Medic (which
        // reports a failure if it did not take the server out, heal it and return it).
        for fault in ["kill -9", "SIGSTOP (a hang)", "answers 503"] {
            for contender in ["Varnish + Medic", "Varnish alone", "nginx + Medic", "nginx alone"] {
                #expect(lines.filter { $0.hasPrefix(fault) && $0.contains(contender) }.count == 1, "\(fault): \(contender)")
            }
        }
        // 5: each agent with 10 and 100 services.
        let costs = lines.filter { line in
            (line.hasPrefix("10 ") || line.hasPrefix("100 ")) && ["medicd", "monit", "supervisord"].contains { line.contains($0) }
        }
        #expect(costs.count == 6, "\(run.output)")
        #expect(costs.allSatisfy { $0.contains(" MiB") && $0.contains("%") })
        #expect(costs.filter { $0.contains("medicd") }.allSatisfy { $0.contains(" ms") })
        // 10: a burst of crashes, systemd's Restart=always and medicd, 10 and 100 of 100 units.
        for contender in ["systemd", "medicd"] {
            for killed in ["10 of 100", "100 of 100"] {
                #expect(lines.contains { $0.hasPrefix(contender + " ") && $0.contains(" \(killed) ") && $0.contains(" ms") }, "\(contender), \(killed)")
            }
        }
        #expect(lines.filter { $0.hasPrefix("medicd ") && $0.contains("did not fire") }.count == 2)
        // 6: medic-bench's figures.
        #expect(run.output.contains("observations/s on one core"))
        #expect(run.output.contains("durable appends"))
        #expect(run.output.contains("of one core at 1 Hz"))
        // 7: the outages that must not spread: no other unit taken down, nobody held.
        let guarded = lines.filter { $0.hasPrefix("db killed") || $0.hasPrefix("3 of 10 units") }
        #expect(guarded.count == 2, "\(run.output)")
        #expect(guarded.allSatisfy { $0.contains(" none ") }, "\(guarded)")
        // 8: the fleet: a host's death to its server out of the pool, and simulated hosts on etcd.
        #expect(lines.contains { $0.hasPrefix("a host's systemd killed (3 hosts, HAProxy)") && $0.contains(" / ") }, "\(run.output)")
        #expect(lines.contains { $0.hasPrefix("100 ") && $0.contains(" MiB") && !$0.hasSuffix("never") }, "\(run.output)")
    }
}

/// Just enough of arbitrary JSON to inspect a decoded value.
struct AnyCodable: Decodable {
    let value: Any?

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let v = try? container.decode(Int.self) { value = v }
        else if let v = try? container.decode(String.self) { value = v }
        else if let v = try? container.decode([String: String].self) { value = v }
        else { value = nil }
    }

    var int: Int? { value as? Int }
    var string: String? { value as? String }
    var object: [String: String]? { value as? [String: String] }
}
