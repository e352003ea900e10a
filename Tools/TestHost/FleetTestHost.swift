import Audit
import Foundation
import Glibc
import MedicCore
import Systemd

/// One fleet host for tests and benchmarks: a test host running web.service (server `server`
/// of HAProxy's backend `app`) and `medicd` as medic.service, registered in the fleet `t` on
/// etcd with a 3 s lease, its playbooks `web` (for web.service) and the shipped `host-down`.
public struct FleetTestHost: Sendable {
    public let host: TestHost
    public let name: String
    public let server: String
    public let webPort: Int
    public let fleetPort: Int
    /// The medicd binary it runs.
    public let medicd: String

    /// The rule of playbook `web` unless given: restart on a crash.
    public static let restartOnCrash = "  - when: crashed\n    do: [ restart ]"

    /// Its address: its own in a test network, else loopback.
    public var address: String { host.address ?? "127.0.0.1" }

    /// medicd's state directory (its audit log): a directory of this machine bound into the
    /// host at the same path, so that it lives on across the host's reboots and is read from
    /// outside through the same inode. (Not on the host's overlay disk: SQLite's locks taken
    /// through an overlay are not seen by a reader of the layer beneath, which would rebuild
    /// the log's WAL index under the writer, and medicd's appends would fail as "database disk
    /// image is malformed" until it stopped.)
    public let state: String

    /// The audit log's directory, read from outside.
    public var auditLog: String { state }

    /// Writes the config and playbooks (again, after a boot: /run is fresh), installs the units
    /// and starts web.service and medic.service.
    public func start(etcd: [String], haproxy: String, rule: String = restartOnCrash) async throws {
        let work = host.directory + "/run/medic-test"
        try FileManager.default.createDirectory(atPath: work + "/playbooks", withIntermediateDirectories: true)
        try """
            fleet:
              name: t
              host: \(name)
              address: \(address):\(fleetPort)
              endpoints: [ \(etcd.map { "\"\($0)\"" }.joined(separator: ", ")) ]
              lease_ttl: 3s
              keepalive: 1s
              alone_grace: 5s
            """.write(toFile: work + "/medic.yaml", atomically: true, encoding: .utf8)
        try """
            playbook: web
            targets:
              - unit: web.service
                pool: { haproxy: \(haproxy), backend: app, server: \(server) }
            on:
            \(rule)
            """.write(toFile: work + "/playbooks/web.yaml", atomically: true, encoding: .utf8)
        let shipped = try String(contentsOfFile: Backend.packageRoot + "/playbooks/host-down.yaml", encoding: .utf8)
        try shipped.replacingOccurrences(of: "to: oncall", with: "to: journal")
            .replacingOccurrences(of: #"  oncall: { webhook: "http://127.0.0.1:9095/medic", format: json, timeout: 5s, retries: 3 }"#, with: "  {}")
            .replacingOccurrences(of: "receivers:\n  {}\n", with: "")
            // Stable for a second, not 30: a benchmark crashes the same host again soon.
            .appending("guards: { stabilise: 1s }\n")
            .write(toFile: work + "/playbooks/host-down.yaml", atomically: true, encoding: .utf8)
        try host.installUnit("web.service", """
            [Service]
            ExecStart=\(try Backend.path()) --port \(webPort) --address \(address) --name \(name)
            """)
        try host.installUnit("medic.service", try String(contentsOfFile: Backend.packageRoot + "/units/medic.service", encoding: .utf8))
        try host.installUnit("medic.service.d/test.conf", """
            [Service]
            ExecStart=
            ExecStart=\(medicd) --config /run/medic-test/medic.yaml --playbooks /run/medic-test/playbooks --state \(state) --metrics-listen off
            PrivateTmp=no
            """)
        let manager = SystemdManager(bus: try SystemBus(address: host.busAddress))
        defer { manager.bus.close() }
        try await manager.reload()
        _ = try await manager.startUnit("web.service")
        let started = try await manager.startUnit("medic.service", timeout: .seconds(30))
        guard started == .finished("done") else {
            throw TestHostError.boot("medic.service did not start on \(name): \(started); \(host.directory)/console.log")
        }
    }

    /// Whether it observed `kind` about `target`.
    public func saw(_ kind: String, about target: String) -> Bool {
        records([.observation]).contains { $0.target == target && $0.facts["observed"] == kind }
    }

    /// Whether a `step` on `target` succeeded.
    public func ran(_ step: String, on target: String) -> Bool {
        records([.stepResult]).contains { $0.target == target && $0.step == step && $0.facts["result"] == "succeeded" }
    }

    public func records(_ kinds: [AuditRecord.Kind]) -> [StoredRecord] {
        guard let store = try? AuditStore(stateDirectory: auditLog, readOnly: true) else { return [] }
        return (try? store.records(AuditQuery(kinds: kinds))) ?? []
    }
}


/// Fleet hosts on test hosts with HAProxy in front of their web.service, all started against
/// one etcd; `destroy()` stops the hosts and HAProxy by PID. Given a `network`, each host has a
/// network namespace and an address of its own on it (etcd must then listen on its gateway).
public final class FleetTestBed: Sendable {
    public let hosts: [FleetTestHost]
    public let haproxy: HAProxy
    private let directory: String

    public init(count: Int, etcd: EtcdCluster, medicd: String, network: TestNetwork? = nil, rule: String = FleetTestHost.restartOnCrash) async throws {
        var template = Array("/tmp/medic-fleet-bed.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestHostError.setup("mkdtemp failed") }
        directory = String(cString: made)
        var hosts: [FleetTestHost] = []
        do {
            for index in 0..<count {
                let state = directory + "/state-h\(index + 1)"
                try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                let host = try TestHost(name: "fleet\(index + 1)", binds: [Backend.packageRoot, state], network: network)
                hosts.append(FleetTestHost(
                    host: host, name: "h\(index + 1)", server: "s\(index + 1)", webPort: freePort(), fleetPort: freePort(), medicd: medicd, state: state))
            }
            haproxy = try HAProxy(
                directory: directory + "/haproxy", servers: hosts.map { "\($0.address):\($0.webPort)" }, checks: .init(parameters: "inter 500ms fall 2 rise 1"),
                adminOverTCP: true, listen: network?.gateway ?? "127.0.0.1")
        } catch {
            for fleetHost in hosts { fleetHost.host.destroy() }
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        self.hosts = hosts
        do {
            for fleetHost in hosts { try await fleetHost.start(etcd: etcd.endpoints, haproxy: haproxy.socket, rule: rule) }
        } catch {
            destroy()
            throw error
        }
    }

    deinit { destroy() }

    /// Stops every host and HAProxy by PID, and removes what they left.
    public func destroy() {
        for fleetHost in hosts { fleetHost.host.destroy() }
        haproxy.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
