import Actions
import Foundation
import Glibc

/// Varnish from Debian's package, started by a test on loopback in the foreground (`-F`): one
/// round-robin director `app` of backends `web1`, `web2`, … on 127.0.0.1, each with a probe on
/// `/health`, its CLI on `cli` with the secret file `secret`. Stopped by its PID (`stop()`, also
/// on deinit); its worker process ends with it.
public final class Varnish: Sendable {
    public let directory: String
    /// Where clients connect (127.0.0.1).
    public let port: Int
    /// The CLI's address (`-T`) and secret file (`-S`).
    public let cli: String
    public let secret: String
    private let process: ChildProcess

    /// Writes the VCL and secret into `directory` and starts varnishd (`ready()` waits for its
    /// CLI). `probe` is the backends' probe timing in VCL, `timeouts` their other settings;
    /// `cli` and `port` are free ones unless given. With `retry`, a fetch that fails (the
    /// backend refused, reset or timed out), or a GET or HEAD answered 5xx, is tried again, up to
    /// twice, and the director picks another backend for it (`return (retry)` in
    /// `vcl_backend_error` and `vcl_backend_response`).
    public init(
        directory: String, backendPorts: [Int], cli: String? = nil, port: Int? = nil,
        probe: String = ".interval = 500ms; .timeout = 300ms; .window = 3; .threshold = 2;", timeouts: String = "", retry: Bool = false
    ) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.port = port ?? freePort()
        self.cli = cli ?? "127.0.0.1:\(freePort())"
        secret = directory + "/secret"
        try Data("medic-test-\(UUID().uuidString)\n".utf8).write(to: URL(fileURLWithPath: secret))
        chmod(secret, 0o600)
        let backends = backendPorts.enumerated().map { index, port in
            "backend web\(index + 1) { .host = \"127.0.0.1\"; .port = \"\(port)\"; .probe = health; \(timeouts) }"
        }
        let vcl = """
            vcl 4.1;
            import directors;
            probe health { .url = "/health"; \(probe) }
            \(backends.joined(separator: "\n"))
            sub vcl_init {
                new app = directors.round_robin();
            \(backendPorts.indices.map { "    app.add_backend(web\($0 + 1));" }.joined(separator: "\n"))
            }
            sub vcl_recv { set req.backend_hint = app.backend(); return (pass); }
            \(retry ? "sub vcl_backend_error { if (bereq.retries < 2) { return (retry); } }" : "")
            \(retry ? "sub vcl_backend_response { if (beresp.status >= 500 && bereq.retries < 2 && bereq.method ~ \"^(GET|HEAD)$\") { return (retry); } }" : "")
            """
        try vcl.write(toFile: directory + "/default.vcl", atomically: true, encoding: .utf8)
        process = try ChildProcess("/usr/sbin/varnishd", [
            // No jail: as root, so that it reads the test's files where they are.
            "-F", "-j", "none", "-n", directory + "/work", "-a", "127.0.0.1:\(self.port)", "-T", self.cli, "-S", secret, "-f", directory + "/default.vcl",
            "-s", "malloc,32m", "-p", "cli_timeout=10",
        ], logPath: directory + "/varnishd.log")
    }

    /// Waits until its CLI answers (`ping`), or throws with varnishd's output.
    public func ready(timeout: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + timeout
        var last = "not asked"
        while ContinuousClock.now < deadline, process.isRunning {
            do {
                try await command("ping")
                return
            } catch {
                last = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestHostError.setup("varnishd did not answer on its CLI \(cli) (\(last)): \(process.output)")
    }

    deinit { stop() }

    public var pid: pid_t { process.pid }

    /// Stops varnishd by its PID (its worker process goes with it).
    public func stop() { _ = process.stop(grace: .seconds(5)) }

    /// Runs one CLI command (as an operator would with varnishadm); its answer's text.
    @discardableResult
    public func command(_ text: String) async throws -> String {
        try await VarnishCLI().run([text], at: cli, secretFile: secret)[0].body
    }

    /// Each backend's admin state and health (`backend.list`): `web1` → `sick`/`healthy`, as the
    /// director sees it, with `MAINT` in front when forced sick.
    public func backendHealth() async throws -> [String: String] {
        let text = try await command("backend.list")
        var health: [String: String] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 4, let dot = fields[0].lastIndex(of: ".") else { continue }
            let name = String(fields[0][fields[0].index(after: dot)...])
            health[name] = (fields[1] == "sick" ? "MAINT " : "") + fields[3]
        }
        return health
    }
}
