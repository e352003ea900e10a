import Foundation
import MedicCore

/// What a receiver is told about an incident, and its body in each webhook format.
struct Notification: Sendable {
    var incident: Int64
    var target: String
    var playbook: String
    var trigger: String
    var observation: String
    var done: [String]
    var message: String
    var host: String
    var time: Timestamp

    init(context: StepContext, message: String?, host: String, time: Timestamp = .now()) {
        incident = context.incident
        target = context.target
        playbook = context.playbook.name
        trigger = context.trigger
        observation = context.observation
        done = context.done
        self.message = message ?? "\(context.target): \(context.trigger) (\(context.observation))"
        self.host = host
        self.time = time
    }

    /// One line for chat and the journal.
    var text: String {
        var line = "[medic] \(host): incident \(incident) on \(target): \(message)"
        if !done.isEmpty { line += ". Done so far: \(done.joined(separator: "; "))" }
        return line + ". Details: medic report \(incident)"
    }

    /// The body for a webhook of `format`.
    func body(_ format: Receiver.Format, receiver: String) -> Data {
        let object: [String: Any]
        switch format {
        case .json:
            object = [
                "source": "medic", "host": host, "incident": incident, "target": target, "playbook": playbook, "trigger": trigger,
                "observation": observation, "message": message, "done": done, "time": time.iso8601,
                "link": "medic report \(incident)",
            ]
        case .alertmanager:
            let labels = ["alertname": "MedicIncident", "instance": host, "target": target, "playbook": playbook, "incident": String(incident)]
            object = [
                "version": "4", "status": "firing", "receiver": receiver, "groupKey": "medic/\(host)/\(incident)",
                "groupLabels": ["alertname": "MedicIncident"], "commonLabels": labels,
                "commonAnnotations": ["summary": message], "externalURL": "", "truncatedAlerts": 0,
                "alerts": [[
                    "status": "firing", "labels": labels, "startsAt": time.iso8601, "endsAt": "0001-01-01T00:00:00Z",
                    "annotations": ["summary": message, "description": text, "trigger": trigger], "generatorURL": "",
                    "fingerprint": "medic-\(host)-\(incident)",
                ]],
            ]
        case .slack:
            object = ["text": text]
        }
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    }
}
