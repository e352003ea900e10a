import Audit
import Foundation
import Glibc
import MedicCore
import TestHost

/// medicd started outside a test host on its bus, with one playbook.
final class MedicdProcess {
    let process: ChildProcess
    let store: AuditStore
    /// From exec to READY=1.
    let startup: Duration

    /// Starts medicd with `playbook` and `more` playbooks (and `arguments` besides) and returns
    /// once it said READY=1.
    init(medicd: String, host: TestHost, work: String, runtime: String, playbook: String, more: [String] = [], arguments: [String] = []) throws {
        try FileManager.default.createDirectory(atPath: work + "/playbooks", withIntermediateDirectories: true)
        for (index, text) in ([playbook] + more).enumerated() {
            try text.write(toFile: work + "/playbooks/bench\(index == 0 ? "" : "-\(index)").yaml", atomically: true, encoding: .utf8)
        }
        let notify = try NotifyListener(directory: work)
        let start = ContinuousClock.now
        process = try ChildProcess(
            medicd,
            ["--playbooks", work + "/playbooks", "--state", work + "/state", "--runtime", runtime,
             "--bus", "unix:path=\(host.directory)/run/dbus/system_bus_socket", "--metrics-listen", "off"] + arguments,
            environment: ["NOTIFY_SOCKET": notify.path], logPath: work + "/medicd.log")
        guard notify.wait(for: "READY=1", timeout: .seconds(30)) != nil else {
            _ = process.stop()
            throw BenchFailure("medicd never said READY=1:\n\(process.output.suffix(2000))")
        }
        startup = ContinuousClock.now - start
        store = try AuditStore(stateDirectory: work + "/state", readOnly: true)
    }

    /// When medicd recorded an observation of `kind` (`crashed`) at or after `fault`.
    func observed(_ kind: String, after fault: Int64) -> Int64? {
        let records = (try? store.records(AuditQuery(kinds: [.observation]))) ?? []
        return records.first { $0.facts["observed"] == kind && $0.wallMicroseconds >= fault }?.wallMicroseconds
    }

    /// Incidents closed so far; with `outcome`, only those that ended so (`recovered`).
    func closedIncidents(outcome: String? = nil) -> Int {
        let records = (try? store.records(AuditQuery(kinds: [.incidentClosed]))) ?? []
        return records.filter { outcome == nil || $0.facts["outcome"] == outcome }.count
    }

    /// Waits (up to 10 s) until `count` incidents have closed (with `outcome`, if given); false
    /// if they did not.
    @discardableResult
    func waitForClosedIncidents(_ count: Int, outcome: String? = nil) -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if closedIncidents(outcome: outcome) >= count { return true }
            usleep(10_000)
        }
        return false
    }

    func stop() { _ = process.stop() }
}
