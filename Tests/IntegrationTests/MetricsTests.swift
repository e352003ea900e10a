import Foundation
import Glibc
import MedicCore
import Systemd
import TestHost
import Testing

@Suite("Prometheus metrics and the config file", .serialized, .timeLimit(.minutes(5)))
struct MetricsTests {
    @Test("medicd reads its config, serves metrics that say what it did, and a reload refuses a broken config and applies a good one")
    func metricsAndConfig() async throws {
        try await withTestHost("metrics") { host in
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: freePort())], start: ["web.service"])
            defer { manager.bus.close() }
            let dir = host.directory + "/config"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            chmod(dir, 0o755)
            let config = dir + "/medic.yaml"
            try """
                guards: { stabilise: 300ms, backoff: { initial: 100ms } }
                receivers: { ops: { journal: warning } }
                """.write(toFile: config, atomically: true, encoding: .utf8)
            chmod(config, 0o644)
            // The playbook's notify names a receiver only the config defines; the guards come from it too.
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: web
                targets: [ { unit: web.service } ]
                on:
                  - when: crashed
                    do: [ restart, { verify: { healthy: within 5s, for: 200ms } }, { notify: ops } ]
                """, arguments: ["--config", config])
            defer { medicd.process.stop() }
            let started = try #require(try medicd.records(kinds: [.daemon]).first)
            #expect(started.facts["config"] == config)

            kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
            #expect(await eventually { ((try? medicd.records(kinds: [.incidentClosed]).count) ?? 0) == 1 })
            // The stabilise period came from the config: 300ms, not the built-in 30s. The wake-up that
            // closes the incident may come a little late on a loaded machine, so the figure is at least 300ms.
            let closed = try #require(try medicd.records(kinds: [.incidentClosed]).first)
            let stabilised = try #require(closed.facts[AuditFact.stabilisedMs.name].flatMap { Int($0) })
            #expect((300..<5_000).contains(stabilised), "\(closed.message)")
            #expect(closed.message.contains("then stable for \(DurationText.format(.milliseconds(stabilised)))"), "\(closed.message)")

            let scrape = try httpExchange(port: medicd.metricsPort, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(scrape.status == 200)
            let samples = prometheusSamples(scrape.body)
            #expect(samples["medic_build_info{version=\"\(MedicVersion.string)\"}"] == 1, "\(scrape.body)")
            #expect((samples["medic_observations_total{kind=\"crashed\"}"] ?? 0) >= 1)
            #expect(samples["medic_incidents_opened_total"] == 1)
            #expect(samples["medic_incidents_closed_total{outcome=\"recovered\"}"] == 1)
            #expect(samples["medic_incidents_open"] == 0)
            #expect(samples["medic_steps_total{step=\"restart\",result=\"succeeded\"}"] == 1)
            #expect(samples["medic_time_to_detect_seconds_count"] == 1)
            #expect(samples["medic_time_to_recover_seconds_count"] == 1)
            #expect((samples["medic_audit_write_seconds_count"] ?? 0) >= 5)
            #expect(samples["medic_audit_writable"] == 1)
            #expect(samples["medic_detector_up{detector=\"bus\"}"] == 1)
            #expect(samples["medic_watched_targets"] == 1)
            #expect(scrape.body.contains("# HELP medic_steps_total Steps run, by kind and result."))

            // The listener refuses what it should, and keeps serving.
            #expect(try httpExchange(port: medicd.metricsPort, "GET /secrets HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status == 404)
            #expect(try httpExchange(port: medicd.metricsPort, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").status == 405)
            _ = try httpExchange(port: medicd.metricsPort, String(repeating: "\u{1}garbage", count: 1000) + "\r\n\r\n")
            #expect(try httpExchange(port: medicd.metricsPort, "GET /metrics HTTP/1.0\r\n\r\n").status == 200)

            // A broken config is refused at reload, with its position; the daemon keeps its settings.
            try "guards: { stabilise: 300ms }\nsampling: { interval: 1 }\n".write(toFile: config, atomically: true, encoding: .utf8)
            chmod(config, 0o644)
            let refused = try medic(["reload", "--socket", medicd.socket])
            #expect(refused.output.contains("\(config):2:23: 'sampling.interval'"), "\(refused.output)")
            #expect(refused.status == 1, "a refused reload is a failure for the caller: \(refused.output)")
            let afterRefusal = prometheusSamples(try httpExchange(port: medicd.metricsPort, "GET /metrics HTTP/1.0\r\n\r\n").body)
            #expect(afterRefusal["medic_config_last_reload_successful"] == 0)

            // A good one is applied: dry_run takes effect at once; a changed retention waits for a
            // restart (and a listener given as a flag stays the flag's).
            try """
                dry_run: true
                guards: { stabilise: 300ms }
                receivers: { ops: { journal: warning } }
                metrics: { listen: 127.0.0.1:1 }
                retention: { keep_for: 30d }
                """.write(toFile: config, atomically: true, encoding: .utf8)
            chmod(config, 0o644)
            let applied = try medic(["reload", "--socket", medicd.socket])
            #expect(applied.status == 0)
            #expect(applied.output.contains("reloaded 1 playbooks (dry-run)"), "\(applied.output)")
            #expect(applied.output.contains("; retention.keep_for changed in the config and take effect when medicd restarts"), "\(applied.output)")
            #expect(try medic(["status", "--socket", medicd.socket]).output.contains("DRY-RUN"))
            let afterReload = prometheusSamples(try httpExchange(port: medicd.metricsPort, "GET /metrics HTTP/1.0\r\n\r\n").body)
            #expect(afterReload["medic_config_last_reload_successful"] == 1)
            #expect(medicd.process.isRunning)
        }
    }

    @Test("a metrics port that is taken is reported, and medicd heals without it")
    func portTaken() async throws {
        try await withTestHost("metrics-taken") { host in
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: freePort())], start: ["web.service"])
            defer { manager.bus.close() }
            let first = try RunningMedicd.start(on: host, playbook: playbook(unit: "web.service", verify: "200ms"), name: "first")
            defer { first.process.stop() }
            let second = try RunningMedicd.start(
                on: host, playbook: playbook(unit: "other.service"), arguments: ["--metrics-listen", "127.0.0.1:\(first.metricsPort)"], name: "second")
            defer { second.process.stop() }
            #expect(await eventually { ((try? second.records(kinds: [.daemon]).contains { $0.message.hasPrefix("metrics are not served: cannot listen on 127.0.0.1:\(first.metricsPort)") }) ?? false) })
            #expect(second.process.isRunning)
        }
    }
}
