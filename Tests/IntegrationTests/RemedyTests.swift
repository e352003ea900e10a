import Audit
import Foundation
import Glibc
import MedicCore
import Systemd
import TestHost
import Testing

@Suite("exec, notify and collect, run by medicd on a real systemd", .serialized, .timeLimit(.minutes(5)))
struct RemedyTests {
    /// A log line an attacker could write into a unit's output: every shell metacharacter.
    static let hostileLine = #"FATAL $(touch /tmp/medic-pwned) `touch /tmp/medic-pwned`; rm -rf /nothing | cat && echo "quoted" 'single' > /tmp/medic-pwned \ $HOME *"#

    @Test("exec: a log line full of shell metacharacters reaches the program as inert data; output, exit code, user, and a timeout that kills the whole group")
    func execHostileInput() async throws {
        try await withTestHost("exec") { host in
            let work = host.directory + "/exec"
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            chmod(host.directory, 0o755)
            chmod(work, 0o777)
            // The site's script: writes what it was given, as it was given, and fails with 3.
            let script = work + "/fix.sh"
            try """
                #!/bin/sh
                printf '%s\\n' "$@" > \(work)/args
                env | grep '^MEDIC_' | sort > \(work)/env
                id -u > \(work)/uid
                pwd > \(work)/pwd
                echo "fixing $MEDIC_UNIT"
                exit 3
                """.write(toFile: script, atomically: true, encoding: .utf8)
            chmod(script, 0o755)
            let hang = work + "/hang.sh"
            try "#!/bin/sh\nsleep 300 &\necho $! > \(work)/child\nwait\n".write(toFile: hang, atomically: true, encoding: .utf8)
            chmod(hang, 0o755)
            unlink("/tmp/medic-pwned")
            // The unit writes the line to its output, from where the journal takes it.
            try (Self.hostileLine + "\n").write(toFile: host.directory + "/run/line.txt", atomically: true, encoding: .utf8)
            let manager = try await installAndStart(host, ["noisy.service": """
                [Service]
                ExecStart=/bin/sh -c 'sleep 0.5; cat /run/line.txt; exec sleep 1000'
                """])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: exec
                targets:
                  - unit: noisy.service
                on:
                  - when: journal "FATAL"
                    do:
                      - exec: { command: [\(script), "--unit", "literal $MEDIC_UNIT"], user: nobody, workdir: /tmp }
                    escalate:
                      - after: failure
                        do:
                          - exec: { command: [\(hang)], timeout: 500ms }
                """, arguments: ["--journal", host.journalDirectory])
            defer { medicd.process.stop() }
            _ = try await manager.startUnit("noisy.service")
            let done = await eventually(timeout: .seconds(15)) {
                ((try? medicd.records(kinds: [.stepResult]).filter { $0.step == "exec" }.count) ?? 0) >= 2
            }
            let results = try medicd.records(kinds: [.stepResult]).filter { $0.step == "exec" }
            #expect(done, "\((try? medicd.records().map(\.message)) ?? [])\n\(medicd.process.output)")
            let first = try #require(results.first)
            #expect(first.facts["exit_code"] == "3" && first.facts["result"] == "failed", "\(first.message)")
            #expect(first.facts["output"] == "fixing noisy.service\n")
            #expect(try String(contentsOfFile: work + "/args", encoding: .utf8) == "--unit\nliteral $MEDIC_UNIT\n")
            let env = try String(contentsOfFile: work + "/env", encoding: .utf8)
            #expect(env.contains("MEDIC_OBSERVATION=journal: \"\(Self.hostileLine)\"\n"), "\(env)")
            #expect(env.contains("MEDIC_UNIT=noisy.service\n") && env.contains("MEDIC_INCIDENT=") && env.contains("MEDIC_TRIGGER=journal \"FATAL\""))
            #expect(try String(contentsOfFile: work + "/uid", encoding: .utf8) == "65534\n", "ran as nobody")
            #expect(try String(contentsOfFile: work + "/pwd", encoding: .utf8) == "/tmp\n")
            #expect(access("/tmp/medic-pwned", F_OK) != 0, "the log line was executed")

            let second = try #require(results.last)
            #expect(second.message.contains("did not finish within 500ms; its process group was killed"), "\(second.message)")
            let child = try #require(pid_t(try String(contentsOfFile: work + "/child", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
            #expect(await eventually(timeout: .seconds(3)) { kill(child, 0) != 0 }, "the script's background child outlived the timeout")
        }
    }

    @Test("notify: webhooks in Medic's JSON and Alertmanager's shape; a failing one is retried, recorded, and never holds the restart")
    func notifyWebhooks() async throws {
        try await withTestHost("notify") { host in
            let good = try WebhookReceiver(status: 200)
            let alerts = try WebhookReceiver(status: 202)
            let bad = try WebhookReceiver(status: 500)
            defer { good.stop(); alerts.stop(); bad.stop() }
            let port = freePort()
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: port)], start: ["web.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: notify
                targets:
                  - unit: web.service
                guards: { stabilise: 300ms }
                receivers:
                  flaky: { webhook: "\(bad.url)", retries: 2, timeout: 1s }
                  team: { webhook: "\(good.url)" }
                  alerts: { webhook: "\(alerts.url)", format: alertmanager }
                  log: { journal: err }
                on:
                  - when: crashed
                    do:
                      - notify: flaky
                      - restart
                      - verify: { healthy: within 5s }
                      - notify: { to: team, message: "web.service crashed and was restarted" }
                      - notify: alerts
                      - notify: log
                """)
            defer { medicd.process.stop() }
            try await Task.sleep(for: .milliseconds(200))
            kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
            let all = await eventually(timeout: .seconds(15)) {
                ((try? medicd.records(kinds: [.stepResult]).filter { $0.step == "notify" }.count) ?? 0) == 4
            }
            let records = try medicd.records()
            #expect(all, "\(records.map(\.message))")
            // The failing receiver did not hold the restart: it ran while the retries went on.
            let opened = try #require(records.first { $0.kind == "incident-opened" })
            let restart = try #require(records.first { $0.kind == "step-intent" && $0.step == "restart" })
            print("restart began \(millisecondsBetween(opened, restart)) ms after the incident opened, despite a failing webhook")
            #expect(millisecondsBetween(opened, restart) < 500)
            let notifications = records.filter { $0.kind == "step-result" && $0.step == "notify" }
            let flaky = try #require(notifications.first { $0.facts["receiver"] == "flaky" })
            #expect(flaky.facts["result"] == "failed" && flaky.message.contains("failed 2 times: HTTP 500; HTTP 500"), "\(flaky.message)")
            #expect(bad.received.count == 2)
            #expect(records.contains { $0.kind == "incident-closed" && $0.facts["outcome"] == "recovered" })

            let goodBody = try #require(good.received.first)
            let document = try #require(try JSONSerialization.jsonObject(with: Data(goodBody.utf8)) as? [String: Any])
            #expect(document["target"] as? String == "web.service")
            #expect(document["incident"] as? Int == Int(opened.incident ?? -1))
            #expect(document["message"] as? String == "web.service crashed and was restarted")
            #expect((document["done"] as? [String])?.contains { $0.hasPrefix("restart") && $0.hasSuffix("succeeded") } == true, "\(document)")
            #expect(document["link"] as? String == "medic report \(opened.incident ?? -1)")

            let alertBody = try #require(alerts.received.first)
            let alert = try #require(try JSONSerialization.jsonObject(with: Data(alertBody.utf8)) as? [String: Any])
            #expect(alert["version"] as? String == "4" && alert["status"] as? String == "firing")
            let labels = try #require(((alert["alerts"] as? [[String: Any]])?.first?["labels"]) as? [String: String])
            #expect(labels["alertname"] == "MedicIncident" && labels["target"] == "web.service")
            #expect(notifications.contains { $0.facts["receiver"] == "log" && $0.facts["result"] == "succeeded" })
        }
    }

    @Test("collect: the evidence bundle holds the unit's journal, its properties and the host's figures, before the restart")
    func collectEvidence() async throws {
        try await withTestHost("collect") { host in
            let manager = try await installAndStart(host, ["talky.service": """
                [Service]
                ExecStart=/bin/sh -c 'for i in 1 2 3 4 5; do echo "line $$i before the crash"; done; sleep 0.3; exit 7'
                """])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: collect
                targets:
                  - unit: talky.service
                guards: { rate: { restart: 1 in 10m } }
                on:
                  - when: crashed
                    do:
                      - collect: { journal: 3 }
                      - restart
                """, arguments: ["--journal", host.journalDirectory])
            defer { medicd.process.stop() }
            _ = try await manager.startUnit("talky.service")
            #expect(await eventually(timeout: .seconds(10)) {
                ((try? medicd.records(kinds: [.stepResult]).contains { $0.step == "collect" }) ?? false)
            })
            let records = try medicd.records()
            let evidence = try #require(records.first { $0.kind == "step-result" && $0.step == "collect" })
            let journal = try #require(evidence.facts["evidence.journal"])
            #expect(journal.split(separator: "\n").count == 3, "\(journal)")
            #expect(journal.contains("line 5 before the crash"))
            #expect(evidence.facts["evidence.unit"]?.contains("ExecMainStatus=7") == true, "\(evidence.facts["evidence.unit"] ?? "")")
            #expect(evidence.facts["evidence.host"]?.contains("MemAvailable") == true)
            let restart = try #require(records.first { $0.kind == "step-intent" && $0.step == "restart" })
            #expect(evidence.seq! < restart.seq!)
            // The post-mortem page of this crash: its evidence folded under the record table.
            let page = try checkReportPage(state: medicd.state, incident: try #require(evidence.incident))
            #expect(page.dom.contains("line 5 before the crash") && page.dom.contains("<details><summary>journal — 3 lines"))
        }
    }
}
