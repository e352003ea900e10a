import AsyncHTTPClient
import Foundation
import HTTPExchange
import MedicCore
import NIOCore
import Systemd

/// Delivers a `notify` step: a webhook POST with a timeout and retries with back-off, or a
/// journal entry at the receiver's priority. The engine runs it beside the plan, so a failing
/// receiver is recorded and never holds a remedy.
struct NotifyAction {
    let client: HTTPClient
    let hostName: String

    func run(recipient: String, message: String?, context: StepContext) async -> StepOutcome {
        guard let receiver = context.playbook.receiver(recipient) else {
            return .failure("playbook \(context.playbook.name) has no receiver '\(recipient)'")
        }
        let notification = Notification(context: context, message: message, host: hostName)
        switch receiver.kind {
        case .journal(let priority):
            do {
                try await JournalWriter.write(
                    message: notification.text, priority: JournalPriority(rawValue: priority) ?? .warning,
                    fields: [("MEDIC_INCIDENT", String(context.incident)), ("MEDIC_TARGET", context.target), ("MEDIC_PLAYBOOK", context.playbook.name)])
                return .success("written to the journal (priority \(priority))", ["receiver": recipient])
            } catch {
                return .failure("cannot write to the journal: \(error)", ["receiver": recipient])
            }
        case .webhook(let url, let format, let timeout, let retries):
            return await post(notification.body(format, receiver: recipient), to: url, receiver: recipient, timeout: timeout, attempts: retries)
        }
    }

    /// POSTs `body`, trying up to `attempts` times, waiting 1 s, 2 s, 4 s… between tries.
    private func post(_ body: Data, to url: String, receiver: String, timeout: Duration, attempts: Int) async -> StepOutcome {
        var problems: [String] = []
        for attempt in 1...attempts {
            if attempt > 1 { try? await Task.sleep(for: .seconds(1 << min(attempt - 2, 5))) }
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "medic")
            request.body = .bytes(ByteBuffer(bytes: body))
            do {
                let status = Int(try await client.exchange(request, timeout: timeout, upTo: 64 * 1024).status.code)
                if (200..<300).contains(status) {
                    return .success("\(receiver) answered HTTP \(status) (attempt \(attempt) of \(attempts))",
                                    ["receiver": receiver, "url": url, "attempts": String(attempt), "http_status": String(status)])
                }
                problems.append("HTTP \(status)")
            } catch {
                problems.append("\(error)")
            }
        }
        return .failure("\(receiver) at \(url) failed \(attempts) times: \(problems.joined(separator: "; "))",
                        ["receiver": receiver, "url": url, "attempts": String(attempts)])
    }
}
