import Audit
import Foundation
import Glibc
import MedicCore

/// A medicd under test: started on a test host's bus from outside, with its own playbooks,
/// state, control socket and notify socket, for the tests and the comparison alike.
public struct RunningMedicd: Sendable {
    public let process: ChildProcess
    /// Its work directory: playbooks/, state/, control.sock, notify.sock, medicd.log.
    public let work: String
    public let state: String
    /// Its control socket.
    public let socket: String
    /// Where it serves its metrics (127.0.0.1); 0 when it does not.
    public let metricsPort: Int
    public let audit: AuditStore
    /// What it sent to its notify socket (read only for READY=1 unless a test reads it).
    public let notify: NotifyListener
    /// From exec to READY=1.
    public let startup: Duration

    /// Writes `playbooks` into a fresh `HOST/name/playbooks` and starts `medicd` on the host's
    /// bus; returns once it said READY=1. `runtime`: its runtime directory (the heartbeat
    /// socket); `metrics`: serve metrics on a free loopback port; `launcher` runs it through
    /// another program (`prlimit …`); `environment` adds to its environment.
    public static func start(
        _ medicd: String, on host: TestHost, playbooks: [String], name: String = "medicd", runtime: String? = nil, metrics: Bool = true,
        arguments: [String] = [], launcher: [String] = [], environment: [String: String] = [:]
    ) throws -> RunningMedicd {
        let work = host.directory + "/" + name
        try FileManager.default.createDirectory(atPath: work + "/playbooks", withIntermediateDirectories: true)
        for (index, text) in playbooks.enumerated() {
            try text.write(toFile: work + "/playbooks/test\(index == 0 ? "" : "-\(index)").yaml", atomically: true, encoding: .utf8)
        }
        try? FileManager.default.removeItem(atPath: work + "/notify.sock")
        let notify = try NotifyListener(directory: work)
        let metricsPort = metrics ? freePort() : 0
        let command = launcher + [medicd]
        var options = ["--playbooks", work + "/playbooks", "--state", work + "/state", "--bus", "unix:path=\(host.directory)/run/dbus/system_bus_socket",
                       "--control-socket", work + "/control.sock", "--metrics-listen", metrics ? "127.0.0.1:\(metricsPort)" : "off"]
        if let runtime { options += ["--runtime", runtime] }
        let start = ContinuousClock.now
        let process = try ChildProcess(
            command[0], Array(command.dropFirst()) + options + arguments,
            environment: environment.merging(["NOTIFY_SOCKET": notify.path]) { $1 }, logPath: work + "/medicd.log")
        guard notify.wait(for: "READY=1", timeout: .seconds(30)) != nil else {
            process.stop()
            throw TestHostError.boot("medicd never said READY=1:\n\(process.output.suffix(2000))")
        }
        return RunningMedicd(
            process: process, work: work, state: work + "/state", socket: work + "/control.sock", metricsPort: metricsPort,
            audit: try AuditStore(stateDirectory: work + "/state", readOnly: true), notify: notify, startup: ContinuousClock.now - start)
    }

    /// What medicd logs once its start-up's work is over (the first heap release, 10–20 s after
    /// READY=1), just before it lets go of the file pages start-up mapped.
    public static let settledLine = "start-up settled"

    /// Waits (up to `timeout`) until medicd has logged that its start-up's work is over; false if
    /// it did not.
    @discardableResult
    public func waitUntilSettled(timeout: Duration = .seconds(40)) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if process.output.contains(Self.settledLine) { return true }
            usleep(100_000)
        }
        return false
    }

    /// Records about `unit` (all units without one) of `kinds` (all kinds without), oldest first.
    public func records(unit: String? = nil, kinds: [AuditRecord.Kind]? = nil) throws -> [StoredRecord] {
        try audit.records(AuditQuery(unit: unit, kinds: kinds))
    }

    /// When medicd recorded an observation of `kind` (`crashed`) at or after `fault`.
    public func observed(_ kind: String, after fault: Int64) -> Int64? {
        let records = (try? records(kinds: [.observation])) ?? []
        return records.first { $0.facts[.observed] == kind && $0.wallMicroseconds >= fault }?.wallMicroseconds
    }

    /// Incidents closed so far; with `outcome`, only those that ended so (`recovered`).
    public func closedIncidents(outcome: String? = nil) -> Int {
        let records = (try? records(kinds: [.incidentClosed])) ?? []
        return records.filter { outcome == nil || $0.facts[.outcome] == outcome }.count
    }

    /// Waits (up to 10 s) until `count` incidents have closed (with `outcome`, if given); false
    /// if they did not.
    @discardableResult
    public func waitForClosedIncidents(_ count: Int, outcome: String? = nil) -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if closedIncidents(outcome: outcome) >= count { return true }
            usleep(10_000)
        }
        return false
    }

    /// SIGTERM, then SIGKILL after 10 s.
    public func stop() { process.stop() }
}
