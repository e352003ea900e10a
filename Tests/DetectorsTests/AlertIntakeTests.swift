import Detectors
import Foundation
import MedicCore
import Testing

@Suite("Alertmanager's notifications, taken once each and mapped to targets")
struct AlertIntakeTests {
    private static func payload(_ alerts: [(status: String, labels: [String: String], fingerprint: String, startsAt: String)]) throws -> AlertmanagerPayload {
        let objects = alerts.map { alert -> [String: Any] in
            ["status": alert.status, "labels": alert.labels, "annotations": ["summary": "s"], "startsAt": alert.startsAt,
             "endsAt": "2026-11-30T10:05:00.123456789Z", "generatorURL": "http://p/graph", "fingerprint": alert.fingerprint]
        }
        let body = try JSONSerialization.data(withJSONObject: ["version": "4", "status": "firing", "receiver": "medic", "alerts": objects] as [String: Any])
        return try AlertmanagerPayload.decode(Array(body))
    }

    @Test("a repeat of an alert (same fingerprint, start and status) is taken once; resolved is news; forgotten when it could not be recorded; remembered across a restart")
    func repeats() throws {
        var intake = AlertIntake(hostNames: ["web1"])
        let now = Timestamp.now()
        let labels = ["alertname": "HighErrorRate", "unit": "web"]
        let firing = try Self.payload([("firing", labels, "f1", "2026-11-30T10:00:00.5Z")])
        let first = intake.take(firing, at: now) { _ in true }
        #expect(first.observations.map(\.kind) == [.alertFiring("HighErrorRate")] && first.observations[0].target == "web.service")
        #expect(first.observations[0].occurred?.wallMicroseconds == 1_796_032_800_500_000, "time to detect runs from startsAt")
        intake.commit(first, at: now)
        #expect(intake.take(firing, at: now) { _ in true }.repeats == 1)
        // The same alert firing again later is news (a new start), and so is its resolution.
        let again = intake.take(try Self.payload([("firing", labels, "f1", "2026-11-30T11:00:00Z"), ("resolved", labels, "f1", "2026-11-30T10:00:00.5Z")]), at: now) { _ in true }
        #expect(again.observations.map(\.kind) == [.alertFiring("HighErrorRate"), .alertResolved("HighErrorRate")])
        #expect(again.observations[1].health == true && again.observations[1].healthAspect == .alert("HighErrorRate"))
        intake.forget(again)
        #expect(intake.take(try Self.payload([("resolved", labels, "f1", "2026-11-30T10:00:00.5Z")]), at: now) { _ in true }.observations.count == 1)
        var restarted = AlertIntake(hostNames: ["web1"])
        restarted.remember([AlertIntake.key(fingerprint: "f1", startsAt: "2026-11-30T10:00:00.5Z", status: "firing")], at: now)
        #expect(restarted.take(firing, at: now) { _ in true }.repeats == 1)
    }

    @Test("the target: the unit label, else the host when instance, host or nodename names this host; else none, and none without an alert rule")
    func targets() throws {
        let intake = AlertIntake(hostNames: ["web1", "web1.example.com"])
        func target(_ labels: [String: String], rule: Bool = true) throws -> String? {
            let taken = intake.take(try Self.payload([("firing", labels.merging(["alertname": "A"]) { $1 }, "f", "2026-11-30T10:00:00Z")]), at: .now()) { _ in rule }
            return taken.observations.first?.target ?? taken.unmatched.first.map { "ignored: " + $0.why }
        }
        #expect(try target(["unit": "db.service", "instance": "other:9100"]) == "db.service")
        #expect(try target(["instance": "web1:9100"]) == "host")
        #expect(try target(["instance": "web1.example.com"]) == "host")
        #expect(try target(["nodename": "web1"]) == "host")
        #expect(try target(["instance": "[::1]:9100"]) == "host")
        #expect(try target(["instance": "web2:9100"])?.hasPrefix("ignored: its labels name no target of this host") == true)
        #expect(try target(["unit": "db.service"], rule: false) == "ignored: no playbook of this host has an alert rule for db.service")
    }

    @Test("a body that is not Alertmanager's payload is refused, saying why")
    func malformed() {
        func why(_ text: String) -> String {
            do {
                _ = try AlertmanagerPayload.decode(Array(text.utf8))
                return "accepted"
            } catch {
                return error.description
            }
        }
        #expect(why("[]").contains("not JSON of Alertmanager's webhook"))
        #expect(why(#"{"version":"4","status":"firing","alerts":[]}"#).contains("field 'receiver' is missing"))
        #expect(why(#"{"version":"4","status":"firing","receiver":"m","alerts":[{"status":"firing","labels":{},"startsAt":"2026-11-30T10:00:00Z","fingerprint":"f"}]}"#).contains("alerts.0.labels has no alertname"))
        #expect(why(#"{"version":"4","status":"firing","receiver":"m","alerts":[{"status":"pending","labels":{"alertname":"A"},"startsAt":"2026-11-30T10:00:00Z","fingerprint":"f"}]}"#).contains("'pending' is not firing or resolved"))
        #expect(why(#"{"version":"4","status":"firing","receiver":"m","alerts":[{"status":"firing","labels":{"alertname":"A"},"startsAt":"yesterday","fingerprint":"f"}]}"#).contains("is not an RFC 3339 time"))
    }
}
