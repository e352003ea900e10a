import Audit
import Foundation
import Glibc
import GRDB
import Synchronization
import Systemd
import TestHost

/// Where this package and its built products are.
enum Paths {
    /// The package root.
    static var packageRoot: String { Backend.packageRoot }

    /// The directory of the built products (where the test bundle itself is).
    static let products: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (exe as NSString).deletingLastPathComponent
    }()

    static var medicd: String { products + "/medicd" }
    static var medic: String { products + "/medic" }
    /// The C test backend, compiled on first use.
    static func backend() throws -> String { try Backend.path() }
}

/// Boots a test host that can see this package (and so its built binaries), runs `body`, and
/// destroys the host whatever happens.
func withTestHost<T>(_ name: String, _ body: (TestHost) async throws -> T) async throws -> T {
    let host = try TestHost(name: name, binds: [Paths.packageRoot])
    defer { host.destroy() }
    return try await body(host)
}

/// Installs `units` (name → unit file) in the host, reloads systemd, starts `start`, and returns
/// a manager on the host's bus (close its bus when done).
func installAndStart(_ host: TestHost, _ units: [String: String], start: [String] = []) async throws -> SystemdManager {
    for (name, contents) in units { try host.installUnit(name, contents) }
    let manager = SystemdManager(bus: try SystemBus(address: host.busAddress))
    try await manager.reload()
    for unit in start { _ = try await manager.startUnit(unit) }
    return manager
}

/// A simple unit running the test backend on `port`.
func backendUnit(port: Int, unitSection: String = "", serviceSection: String = "") throws -> String {
    """
    [Unit]
    Description=Medic test backend on port \(port)
    \(unitSection)
    [Service]
    ExecStart=\(try Paths.backend()) --port \(port) --name backend-\(port)
    \(serviceSection)
    """
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}

/// Milliseconds since `start` on the continuous clock.
func milliseconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
}

/// Runs the built `medic` and returns its exit status and output.
func medic(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let run = try ChildProcess(Paths.medic, arguments, logPath: dir + "/out")
    let status = run.waitForExit(timeout: .seconds(30)) ?? -1
    return (status, run.output)
}

/// Runs the built `medic` as the user `nobody` (group `nogroup`), through util-linux's setpriv.
func medicAsNobody(_ arguments: [String]) throws -> (status: Int32, output: String) {
    try medicAs(["--reuid=nobody", "--regid=nogroup", "--clear-groups"], arguments)
}

func medicAs(_ identity: [String], _ arguments: [String]) throws -> (status: Int32, output: String) {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let run = try ChildProcess("/usr/bin/setpriv", identity + ["--", Paths.medic] + arguments, logPath: dir + "/out")
    let status = run.waitForExit(timeout: .seconds(30)) ?? -1
    return (status, run.output)
}

extension RunningMedicd {
    /// The built medicd, on `host`, with one playbook (see `RunningMedicd.start`).
    static func start(
        on host: TestHost, playbook: String, arguments: [String] = [], name: String = "medicd", launcher: [String] = [], environment: [String: String] = [:]
    ) throws -> RunningMedicd {
        try start(Paths.medicd, on: host, playbooks: [playbook], name: name, arguments: arguments, launcher: launcher, environment: environment)
    }
}

/// A playbook for one unit: restart on a crash, verify, and a short stabilisation period so
/// that incidents close quickly in tests.
func playbook(unit: String, verify: String = "1s", restarts: String = "3 in 10m", flap: String = "10 in 5m") -> String {
    """
    playbook: test
    targets:
      - unit: \(unit)
    guards:
      rate: { restart: \(restarts) }
      backoff: { initial: 100ms }
      stabilise: 300ms
      flap: \(flap)
    on:
      - when: crashed
        do:
          - restart: { timeout: 10s }
          - verify: { healthy: within 5s, for: \(verify) }
    """
}

/// `median 2.1, p90 3.4, max 4.0 (n=5)`.
func summary(_ values: [Double]) -> String {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return "no samples" }
    func at(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * q).rounded()))] }
    return String(format: "median %.1f, p90 %.1f, max %.1f (n=%d)", at(0.5), at(0.9), sorted.last!, sorted.count)
}

/// Installs units/medic.service in the host as shipped, with a drop-in that runs the built
/// medicd on `playbook` (plus `service` lines), and web.service; returns medicd's work
/// directory as seen from outside (/run/medic-test inside).
func installMedicUnit(_ host: TestHost, playbook: String, service: String = "") throws -> String {
    let work = host.directory + "/run/medic-test"
    try FileManager.default.createDirectory(atPath: work + "/playbooks", withIntermediateDirectories: true)
    try playbook.write(toFile: work + "/playbooks/web.yaml", atomically: true, encoding: .utf8)
    try host.installUnit("web.service", try backendUnit(port: freePort()))
    try host.installUnit("medic.service", try String(contentsOfFile: Paths.packageRoot + "/units/medic.service", encoding: .utf8))
    try host.installUnit("medic.service.d/test.conf", """
        [Service]
        ExecStart=
        ExecStart=\(Paths.medicd) --playbooks /run/medic-test/playbooks --state /run/medic-test/state --metrics-listen 127.0.0.1:\(freePort())
        # The built medicd may live under /tmp (a CI checkout), which PrivateTmp= would hide.
        PrivateTmp=no
        \(service)
        """)
    return work
}

/// `installMedicUnit`, then starts web.service and medic.service; medic.service is Type=notify,
/// so its start job is done only once medicd has sent READY=1. The caller closes the bus.
func startMedicUnit(_ host: TestHost, playbook: String, service: String = "") async throws -> (work: String, manager: SystemdManager) {
    let work = try installMedicUnit(host, playbook: playbook, service: service)
    let manager = SystemdManager(bus: try SystemBus(address: host.busAddress))
    try await manager.reload()
    _ = try await manager.startUnit("web.service")
    let started = try await manager.startUnit("medic.service", timeout: .seconds(30))
    guard started == .finished("done") else {
        manager.bus.close()
        throw TestHostError.boot("medic.service did not start: \(started)")
    }
    return (work, manager)
}

/// A fresh directory under /tmp, for one test.
func temporaryDirectory() throws -> String {
    var template = Array("/tmp/medic-test.XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw TestHostError.setup("mkdtemp failed") }
    return String(cString: made)
}

/// The samples of a Prometheus text exposition: `name{labels}` → value.
func prometheusSamples(_ text: String) -> [String: Double] {
    var samples: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
        samples[String(line[..<space])] = value
    }
    return samples
}

/// Milliseconds between two records of the audit log.
func millisecondsBetween(_ a: StoredRecord, _ b: StoredRecord) -> Double {
    Double(b.wallMicroseconds - a.wallMicroseconds) / 1000
}

/// Test backends `web1`… on loopback (outside any test host), with their ports and logs in
/// `directory`; the caller stops each by its PID.
func startBackends(_ count: Int, in directory: String) throws -> (processes: [ChildProcess], ports: [Int]) {
    let ports = (0..<count).map { _ in freePort() }
    let processes = try ports.enumerated().map { index, port in
        try ChildProcess(try Paths.backend(), ["--port", String(port), "--name", "web\(index + 1)"], logPath: directory + "/web\(index + 1).log")
    }
    return (processes, ports)
}

/// Another process's exclusive lock on medicd's audit log, as a stuck backup or a careless
/// sqlite3 would hold it, from `init` until `release()` (or deinit).
final class AuditLogLock: Sendable {
    private let released = DispatchSemaphore(value: 0)
    private let done = Mutex(false)

    init(state: String) throws {
        let intruder = try DatabaseQueue(path: state + "/" + AuditStore.fileName)
        let locked = DispatchSemaphore(value: 0), released = self.released
        Thread.detachNewThread {
            try? intruder.writeWithoutTransaction { db in
                try db.execute(sql: "BEGIN EXCLUSIVE")
                locked.signal()
                released.wait()
                try db.execute(sql: "COMMIT")
            }
        }
        locked.wait()
    }

    deinit { release() }

    func release() {
        guard done.withLock({ was in defer { was = true }; return !was }) else { return }
        released.signal()
    }
}
