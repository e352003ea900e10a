import Foundation
import Glibc
import Posix
import Synchronization
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

/// A member that answers every request with a response head and the start of a body, then
/// goes quiet with the connection open: what a client sees of a server that froze, or a link
/// cut, mid-answer. Its thread ends, and its sockets close, with `stop()`.
final class StallingMember: Sendable {
    let endpoint: String
    private let listener: Socket
    private let accepted = Mutex<[Socket]>([])

    init() throws {
        listener = try Socket.bind(.loopback(0), .stream)
        endpoint = "http://127.0.0.1:\(listener.localPort)"
        let thread = Thread { [self] in
            while let connection = try? listener.accept() {
                accepted.withLock { $0.append(connection) }
                _ = try? connection.receive()
                try? connection.send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"header\":")
            }
        }
        thread.start()
    }

    func stop() {
        listener.shutdown()
        for connection in accepted.withLock({ $0 }) { connection.shutdown() }
    }
}
