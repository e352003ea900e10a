import Foundation
import Glibc
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
