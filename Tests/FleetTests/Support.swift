import Foundation
import Glibc
import TestHost

/// A fresh directory under /tmp for one test's etcd.
func scratch(_ name: String) throws -> String {
    var template = Array("/tmp/medic-fleet-\(name)-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw TestHostError.setup("mkdtemp failed") }
    return String(cString: made)
}

/// Runs `body` with an etcd cluster of `size` members, stopped by PID afterwards, also when
/// `body` throws.
func withEtcd<T>(_ name: String, size: Int = 1, scheme: String = "http", extra: [String] = [], _ body: (EtcdCluster) async throws -> T) async throws -> T {
    let cluster = try EtcdCluster(size: size, directory: try scratch(name), scheme: scheme, extra: extra)
    defer { cluster.stop() }
    return try await body(cluster)
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
func eventually(timeout: Duration, _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return await condition()
}
