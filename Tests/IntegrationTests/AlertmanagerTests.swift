import Audit
import Foundation
import MedicCore
import Systemd
import TestHost
import Testing

/// Alerts from a real Prometheus Alertmanager drive a playbook, with every rail.
@Suite("Alertmanager's alerts as triggers, from a real Alertmanager", .serialized, .timeLimit(.minutes(5)))
struct AlertmanagerTests {
    static let playbook = """
        playbook: web-errors
        targets:
          - unit: web.service
        guards: { stabilise: 300ms, backoff: { initial: 100ms } }
        on:
          - when: alert "HighErrorRate" { job = "web", severity =~ "page|critical" }
            do:
              - restart
              - verify: { healthy: within 30s }
        """

    /// medicd's webhook counters, by result.
    private static func webhookCounts(_ medicd: RunningMedicd) -> [String: Double] {
        let page = (try? httpExchange(port: medicd.metricsPort, "GET /metrics HTTP/1.0\r\n\r\n").body) ?? ""
        let prefix = #"medic_alert_webhook_requests_total{result=""#
        var counts: [String: Double] = [:]
        for (name, value) in prometheusSamples(page) where name.hasPrefix(prefix) { counts[String(name.dropFirst(prefix.count).dropLast(2))] = value }
        return counts
    }

    private static func post(_ port: Int, token: String?, _ body: String, length: Int? = nil) throws -> (status: Int, body: String) {
        let authorization = token.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        return try httpExchange(port: port, "POST /alertmanager HTTP/1.1\r\nHost: medic\r\nConnection: close\r\n\(authorization)Content-Type: application/json\r\nContent-Length: \(length ?? body.utf8.count)\r\n\r\n\(body)")
    }

    @Test("a firing alert heals its unit through the playbook and resolved closes the loop; a repeat runs nothing again; a wrong token, a malformed or too large body are refused; an alert for no target is recorded and ignored; an unwritable log answers 503 and Alertmanager's retry is carried out")
    func alertDrivesPlaybook() async throws {
        try await withTestHost("alerts") { host in
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: freePort())], start: ["web.service"])
            defer { manager.bus.close() }
            let dir = host.directory + "/alerting"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let token = "t-\(UInt64.random(in: 0...UInt64.max))"
            try token.write(toFile: dir + "/token", atomically: true, encoding: .utf8)
            chmod(dir + "/token", 0o600)
            let port = freePort()
            try "alertmanager:\n  listen: 127.0.0.1:\(port)\n  token_file: \(dir)/token\n  max_body: 64KiB\n".write(toFile: dir + "/medic.yaml", atomically: true, encoding: .utf8)
            let medicd = try RunningMedicd.start(on: host, playbook: Self.playbook, arguments: ["--config", dir + "/medic.yaml"])
            defer { medicd.process.stop() }
            let alertmanager = try Alertmanager(directory: dir + "/alertmanager", webhook: "http://127.0.0.1:\(port)/alertmanager", tokenFile: dir + "/token")
            defer { alertmanager.stop() }
            let before = try await manager.state(of: "web.service").mainPID
            func log() -> String { ((try? medicd.records()) ?? []).map { "\($0.seq ?? 0) \($0.kind) \($0.message)" }.joined(separator: "\n") }

            // Firing: the playbook restarts the unit.
            let labels = ["alertname": "HighErrorRate", "unit": "web.service", "job": "web", "severity": "page", "instance": "web1:8080"]
            let started = Date()
            try alertmanager.post([.init(labels: labels, annotations: ["summary": "5% of requests fail"], startsAt: started)])
            let restarted = await eventually(timeout: .seconds(15)) {
                ((try? medicd.records(kinds: [.stepResult]).contains { $0.step == "restart" && $0.facts["result"] == "succeeded" }) ?? false)
            }
            #expect(restarted, "\(log())\n\(alertmanager.output.suffix(3000))")
            #expect(try await manager.state(of: "web.service").mainPID != before)
            let opened = try #require(try medicd.records(kinds: [.incidentOpened]).first)
            #expect(opened.facts["trigger"] == #"alert "HighErrorRate" { job = "web", severity =~ "page|critical" }"#, "\(opened.facts)")
            let firing = try #require(try medicd.records(kinds: [.observation]).first { $0.facts["observed"] == "alert-firing" })
            #expect(firing.facts["label.job"] == "web" && firing.facts["annotation.summary"] == "5% of requests fail")
            #expect(firing.facts["generator_url"]?.hasPrefix("http://prometheus.example:9090/graph") == true && firing.facts["receiver"] == "medic")
            #expect(opened.facts["time_to_detect_ms"] != nil)

            // Alertmanager sends the firing group again (repeat_interval 3s): nothing runs again.
            #expect(await eventually(timeout: .seconds(12)) { (Self.webhookCounts(medicd)["repeat"] ?? 0) >= 1 }, "\(Self.webhookCounts(medicd))")
            #expect(try medicd.records(kinds: [.incidentOpened]).count == 1)
            #expect(try medicd.records(kinds: [.stepIntent]).filter { $0.step == "restart" }.count == 1)
            #expect(try medicd.records(kinds: [.observation]).filter { $0.facts["observed"] == "alert-firing" }.count == 1)
            #expect(try medicd.records(kinds: [.incidentClosed]).isEmpty, "closed before the alert was resolved:\n\(log())")

            // Resolved: the target is healthy again, and the incident closes.
            try alertmanager.post([.init(labels: labels, startsAt: started, endsAt: Date().addingTimeInterval(-1))])
            let closed = await eventually(timeout: .seconds(15)) {
                ((try? medicd.records(kinds: [.incidentClosed]).contains { $0.facts["outcome"] == "recovered" }) ?? false)
            }
            #expect(closed, "\(log())")

            // Refused at the door, and counted.
            let valid = #"{"version":"4","status":"firing","receiver":"x","alerts":[{"status":"firing","labels":{"alertname":"HighErrorRate","unit":"other.service"},"startsAt":"2026-11-30T10:00:00Z","fingerprint":"abc"}]}"#
            #expect(try Self.post(port, token: nil, valid).status == 401)
            #expect(try Self.post(port, token: token + "x", valid).status == 401)
            #expect(try Self.post(port, token: token, "{not json").status == 400)
            let malformed = try Self.post(port, token: token, #"{"version":"3","status":"firing","receiver":"x","alerts":[]}"#)
            #expect(malformed.status == 400 && malformed.body.contains("version '3' is not 4"), "\(malformed)")
            #expect(try Self.post(port, token: token, String(repeating: "x", count: 70_000)).status == 413)
            #expect(try Self.post(port, token: token, "", length: 10_000_000).status == 413)
            // An alert for a unit no playbook has an alert rule for: recorded, nothing more.
            #expect(try Self.post(port, token: token, valid).status == 200)
            #expect(try medicd.records(kinds: [.observation]).contains { $0.message.contains("ignored: no playbook of this host has an alert rule for other.service") })
            let counts = Self.webhookCounts(medicd)
            #expect(counts["unauthorized"] == 2 && counts["malformed"] == 2 && counts["too-large"] == 2, "\(counts)")

            // The audit log cannot be written (another process holds its lock): the webhook is
            // answered 503 and nothing runs; once it can, Alertmanager's retry is carried out.
            let lock = try AuditLogLock(state: medicd.state)
            defer { lock.release() }
            let pidBefore = try await manager.state(of: "web.service").mainPID
            let again = Date()
            try alertmanager.post([.init(labels: labels, annotations: ["summary": "again"], startsAt: again)])
            #expect(await eventually(timeout: .seconds(20)) { (Self.webhookCounts(medicd)["unavailable"] ?? 0) >= 1 }, "\(Self.webhookCounts(medicd))")
            #expect(try await manager.state(of: "web.service").mainPID == pidBefore, "a step ran while the log could not be written")
            lock.release()
            let secondRestart = await eventually(timeout: .seconds(20)) {
                ((try? medicd.records(kinds: [.stepResult]).filter { $0.step == "restart" && $0.facts["result"] == "succeeded" }.count) ?? 0) == 2
            }
            #expect(secondRestart, "\(log())")
            #expect(try medicd.records(kinds: [.incidentOpened]).count == 2, "\(log())")
            try alertmanager.post([.init(labels: labels, startsAt: again, endsAt: Date().addingTimeInterval(-1))])
            #expect(await eventually(timeout: .seconds(15)) { ((try? medicd.records(kinds: [.incidentClosed]).count) ?? 0) == 2 }, "\(log())")
            #expect(try medicd.audit.verify().problem == nil)
            // The post-mortem draft lists the alert with its labels, annotations and source.
            let draft = try medic(["report", String(try #require(opened.incident)), "--state", medicd.state]).output
            #expect(draft.contains("## Alerts (from Alertmanager)") && draft.contains(#"job="web""#) && draft.contains("summary: 5% of requests fail")
                && draft.contains("http://prometheus.example:9090/graph"), "\(draft)")
            // The post-mortem page shows the alert's record.
            let page = try checkReportPage(state: medicd.state, incident: try #require(opened.incident))
            #expect(page.dom.contains("alert HighErrorRate firing: 5% of requests fail"))
        }
    }

    @Test("over TLS: Alertmanager delivers to medicd's https webhook, trusting its certificate; plain HTTP gets no answer")
    func overTLS() async throws {
        try await withTestHost("alerts-tls") { host in
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: freePort())], start: ["web.service"])
            defer { manager.bus.close() }
            let dir = host.directory + "/alerting"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let openssl = try ChildProcess("/usr/bin/openssl", [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem", "-days", "1",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            ], logPath: dir + "/openssl.log")
            #expect(openssl.waitForExit(timeout: .seconds(30)) == 0, "\(openssl.output)")
            chmod(dir + "/key.pem", 0o600)
            try "tls-token".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
            chmod(dir + "/token", 0o600)
            let port = freePort()
            try """
                alertmanager:
                  listen: 127.0.0.1:\(port)
                  token_file: \(dir)/token
                  tls: { cert: \(dir)/cert.pem, key: \(dir)/key.pem }
                """.write(toFile: dir + "/medic.yaml", atomically: true, encoding: .utf8)
            let medicd = try RunningMedicd.start(on: host, playbook: Self.playbook, arguments: ["--config", dir + "/medic.yaml"])
            defer { medicd.process.stop() }
            let alertmanager = try Alertmanager(
                directory: dir + "/alertmanager", webhook: "https://127.0.0.1:\(port)/alertmanager", tokenFile: dir + "/token", caFile: dir + "/cert.pem")
            defer { alertmanager.stop() }
            try alertmanager.post([.init(labels: ["alertname": "HighErrorRate", "unit": "web.service", "job": "web", "severity": "critical"])])
            let restarted = await eventually(timeout: .seconds(15)) {
                ((try? medicd.records(kinds: [.stepResult]).contains { $0.step == "restart" && $0.facts["result"] == "succeeded" }) ?? false)
            }
            #expect(restarted, "\(((try? medicd.records()) ?? []).map(\.message))\n\(alertmanager.output.suffix(3000))")
            #expect((try? Self.post(port, token: "tls-token", "{}").status) ?? 0 == 0, "plain HTTP was answered on the TLS listener")
        }
    }
}
