import Foundation
import Glibc
import Posix

/// Prometheus Alertmanager from Debian's package (`prometheus-alertmanager`), started by a test
/// on loopback with one webhook receiver (`url`, a bearer token from `tokenFile`, resolved
/// alerts sent too) and short intervals, without clustering. Stopped by its PID (`stop()`, also
/// on deinit); its directory is the test's.
public final class Alertmanager: Sendable {
    public let port: Int
    public let directory: String
    private let process: ChildProcess

    /// `repeatInterval`: how often a firing group is sent again unchanged; `caFile`: the CA
    /// that signed an https webhook's certificate.
    public init(directory: String, webhook url: String, tokenFile: String, repeatInterval: String = "3s", caFile: String? = nil) throws {
        self.directory = directory
        port = freePort()
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        try """
            route:
              receiver: medic
              group_by: [alertname, unit]
              group_wait: 0s
              group_interval: 1s
              repeat_interval: \(repeatInterval)
            receivers:
              - name: medic
                webhook_configs:
                  - url: \(url)
                    send_resolved: true
                    http_config:
                      authorization: { type: Bearer, credentials_file: \(tokenFile) }
            \(caFile.map { "          tls_config: { ca_file: \($0) }" } ?? "")
            """.write(toFile: directory + "/alertmanager.yml", atomically: true, encoding: .utf8)
        process = try ChildProcess("/usr/bin/prometheus-alertmanager", [
            "--config.file=\(directory)/alertmanager.yml", "--storage.path=\(directory)/data", "--web.listen-address=127.0.0.1:\(port)",
            "--cluster.listen-address=", "--log.level=debug",
        ], logPath: directory + "/alertmanager.log")
        let deadline = ContinuousClock.now + .seconds(20)
        while (try? httpExchange(port: port, "GET /-/ready HTTP/1.0\r\n\r\n", timeout: 1).status) != 200 {
            guard ContinuousClock.now < deadline else {
                process.stop()
                throw TestHostError.boot("Alertmanager did not become ready:\n\(process.output.suffix(2000))")
            }
            usleep(50_000)
        }
    }

    deinit { stop() }

    public var output: String { process.output }

    public func stop() { process.stop(grace: .seconds(5)) }

    /// Posts alerts to Alertmanager's own API, as Prometheus does: each with its labels,
    /// annotations, when it began and when it ends (a past end resolves it).
    public func post(_ alerts: [Alert]) throws {
        let body = String(decoding: try JSONSerialization.data(withJSONObject: alerts.map(\.json)), as: UTF8.self)
        let answer = try httpExchange(port: port, "POST /api/v2/alerts HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        guard answer.status == 200 else { throw TestHostError.command("Alertmanager refused the alerts: \(answer.status) \(answer.body)") }
    }

    /// An alert as Prometheus posts it.
    public struct Alert: Sendable {
        public var labels: [String: String]
        public var annotations: [String: String]
        public var startsAt: Date
        public var endsAt: Date
        public var generatorURL = "http://prometheus.example:9090/graph?g0.expr=rate%28http_errors%5B1m%5D%29"

        /// Firing since `startsAt`, ending in five minutes unless sent again.
        public init(labels: [String: String], annotations: [String: String] = [:], startsAt: Date = Date(), endsAt: Date = Date().addingTimeInterval(300)) {
            self.labels = labels
            self.annotations = annotations
            self.startsAt = startsAt
            self.endsAt = endsAt
        }

        var json: [String: Any] {
            let format = ISO8601DateFormatter()
            format.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return ["labels": labels, "annotations": annotations, "startsAt": format.string(from: startsAt), "endsAt": format.string(from: endsAt),
                    "generatorURL": generatorURL]
        }
    }
}
