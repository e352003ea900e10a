import Detectors
import Engine
import Foundation
import Logging
import MedicCore
import NIOHTTP1
import NIOSSL
import Playbooks

/// Alertmanager's webhook (`POST /alertmanager`): a request must bring the bearer token of the
/// config's token file; its body is decoded (payload version 4), each alert mapped to a target
/// of this host and seen once (see `AlertIntake`), and the request is answered 200 only once
/// what it brought is durable in the audit log. While the log cannot be written it is answered
/// 503 and nothing is kept: Alertmanager sends it again, and that is carried out once the log is
/// back. Unauthenticated and malformed requests get 401 and 400, and every answer is counted
/// (`medic_alert_webhook_requests_total`).
actor AlertReceiver {
    private var intake: AlertIntake
    private let token: [UInt8]
    private let engine: Engine
    private let metrics: MedicMetrics
    private let logger: Logger

    init(token: String, engine: Engine, metrics: MedicMetrics, logger: Logger) {
        self.token = Array(token.utf8)
        intake = AlertIntake(hostNames: AlertIntake.localNames())
        self.engine = engine
        self.metrics = metrics
        self.logger = logger
    }

    /// The listener for `config`, its token read (only from a file only root can read) and its
    /// TLS set up; throws what is wrong with either.
    static func listener(
        _ config: AlertmanagerReceiver, recorded: @escaping @Sendable () -> [String], engine: Engine, metrics: MedicMetrics, logger: Logger
    ) throws -> HTTPListener {
        guard let address = ListenAddress(config.listen) else { throw SecretFileError(description: "alertmanager.listen '\(config.listen)' is not HOST:PORT") }
        let token = try SecretFile.read(config.tokenFile, what: "alertmanager.token_file")
        guard !token.isEmpty else { throw SecretFileError(description: "alertmanager.token_file \(config.tokenFile) is empty; put the bearer token Alertmanager sends in it") }
        var tls: NIOSSLContext?
        if let certificate = config.certificateFile, let key = config.keyFile {
            _ = try SecretFile.read(key, what: "alertmanager.tls.key")
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
                tls = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))))
            } catch {
                throw SecretFileError(description: "alertmanager.tls: cannot use \(certificate) and \(key): \(error)")
            }
        }
        let receiver = AlertReceiver(token: token, engine: engine, metrics: metrics, logger: logger)
        let route = HTTPListener.Route(method: .POST, maximumBody: config.maximumBody, onTooLarge: { metrics.alertWebhook("too-large") }) { request in
            await receiver.remember(recorded)
            return await receiver.answer(request)
        }
        return HTTPListener(
            name: "Alertmanager's webhook", notServed: "Alertmanager's alerts are not received", address: address,
            routes: [AlertmanagerReceiver.path: route], tls: tls, engine: engine, logger: logger)
    }

    private var remembered = false

    /// The alerts recorded before, from the audit log: seen, so that their repeats after a
    /// restart of medicd open nothing again. Done once, at the first request.
    func remember(_ recorded: @Sendable () -> [String]) {
        guard !remembered else { return }
        remembered = true
        intake.remember(recorded(), at: .now())
    }

    func answer(_ request: HTTPListener.Request) async -> HTTPListener.Answer {
        guard authorized(request.head.headers) else {
            metrics.alertWebhook("unauthorized")
            return (.unauthorized, "text/plain", Array("a bearer token is needed (Alertmanager's http_config.authorization)\n".utf8))
        }
        let payload: AlertmanagerPayload
        do {
            payload = try AlertmanagerPayload.decode(request.body)
        } catch {
            metrics.alertWebhook("malformed")
            return (.badRequest, "text/plain", Array("\(error)\n".utf8))
        }
        let now = Timestamp.now()
        var rules: [String: Bool] = [:]
        for alert in payload.alerts {
            if let target = intake.target(of: alert.labels), rules[target] == nil { rules[target] = await engine.hasAlertRule(for: target) }
        }
        let taken = intake.take(payload, at: now) { rules[$0] ?? false }
        guard !taken.observations.isEmpty || !taken.unmatched.isEmpty else {
            metrics.alertWebhook("repeat")
            return (.ok, "text/plain", Array("every alert in it was seen before\n".utf8))
        }
        // Seen from now, so that a copy arriving meanwhile (two Alertmanagers of a cluster) is a
        // repeat; forgotten again if it cannot be recorded.
        intake.commit(taken, at: now)
        let ignored = taken.unmatched.map { entry in
            AuditRecord(kind: .observation, time: now, message: "alert \(entry.alert) \(entry.facts["alert_status"] ?? "") ignored: \(entry.why)",
                        details: entry.facts.merging([AuditFact.observed.name: "alert-unmatched"]) { $1 })
        }
        guard await engine.handleDurably(taken.observations, records: ignored) else {
            intake.forget(taken)
            metrics.alertWebhook("unavailable")
            logger.warning("Alertmanager's webhook answered 503: the audit log cannot be written; Alertmanager will send it again")
            return (.serviceUnavailable, "text/plain", Array("the audit log cannot be written now; send it again\n".utf8))
        }
        metrics.alertWebhook("accepted")
        return (.ok, "text/plain", Array("recorded \(taken.observations.count) alert(s), ignored \(taken.unmatched.count), \(taken.repeats) repeat(s)\n".utf8))
    }

    /// `Authorization: Bearer TOKEN`, compared in constant time.
    private func authorized(_ headers: HTTPHeaders) -> Bool {
        guard let value = headers.first(name: "authorization"), value.lowercased().hasPrefix("bearer ") else { return false }
        let given = Array(value.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces).utf8)
        var difference = UInt8(given.count == token.count ? 0 : 1)
        for index in token.indices { difference |= token[index] ^ (index < given.count ? given[index] : 0) }
        return difference == 0
    }
}
