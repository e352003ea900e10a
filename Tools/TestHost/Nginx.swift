import Foundation
import Glibc

/// nginx from Debian's package, started by a test on loopback in the foreground
/// (`daemon off`, its master and one worker): one upstream `app` whose `server` lines are in the
/// file `upstreams` that Medic keeps, proxied on `port`. Everything it writes stays under
/// `directory`. Stopped by its master's PID (`stop()`, also on deinit).
public final class Nginx: Sendable {
    public let directory: String
    public let port: Int
    /// The main configuration, the upstream file it includes and the master's PID file.
    public let config: String
    public let upstreams: String
    public let pidFile: String
    private let process: ChildProcess

    /// Writes the configuration (`server 127.0.0.1:PORT SERVER;` for each backend port, the
    /// location's `proxy` settings) and starts nginx; `ready()` waits until it serves. `port`
    /// is a free one unless given.
    public init(
        directory: String, backendPorts: [Int], port: Int? = nil, server: String = "max_fails=1 fail_timeout=1s",
        proxy: String = "proxy_next_upstream error timeout http_502 http_503; proxy_connect_timeout 1s; proxy_read_timeout 5s;"
    ) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory + "/logs", withIntermediateDirectories: true)
        self.port = port ?? freePort()
        config = directory + "/nginx.conf"
        upstreams = directory + "/app.servers"
        pidFile = directory + "/nginx.pid"
        try (backendPorts.map { "server 127.0.0.1:\($0) \(server);" }.joined(separator: "\n") + "\n")
            .write(toFile: upstreams, atomically: true, encoding: .utf8)
        try Self.configuration(directory: directory, port: self.port, upstreams: upstreams, pidFile: pidFile, proxy: proxy)
            .write(toFile: config, atomically: true, encoding: .utf8)
        process = try ChildProcess("/usr/sbin/nginx", ["-p", directory, "-c", config], logPath: directory + "/logs/nginx.out")
    }

    /// A configuration of one master and one worker in the foreground, proxying 127.0.0.1:`port`
    /// to the upstream `app` whose servers are in `upstreams`, everything it writes under
    /// `directory`. `proxy` is the location's proxy settings beside `proxy_pass`.
    static func configuration(directory: String, port: Int, upstreams: String, pidFile: String, proxy: String) -> String {
        """
        daemon off;
        worker_processes 1;
        pid \(pidFile);
        error_log \(directory)/logs/error.log info;
        events { worker_connections 4096; }
        http {
            access_log off;
            client_body_temp_path \(directory)/body;
            proxy_temp_path \(directory)/proxy;
            fastcgi_temp_path \(directory)/fastcgi;
            uwsgi_temp_path \(directory)/uwsgi;
            scgi_temp_path \(directory)/scgi;
            upstream app { include \(upstreams); }
            server {
                listen 127.0.0.1:\(port);
                location / { proxy_pass http://app; \(proxy) }
            }
        }

        """
    }

    /// Waits until it answers on its port, or throws with its output.
    public func ready(timeout: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, process.isRunning {
            if (try? httpExchange(port: port, "GET /health HTTP/1.0\r\n\r\n", timeout: 1))?.status == 200 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestHostError.setup("nginx did not serve on 127.0.0.1:\(port): \(process.output)")
    }

    deinit { stop() }

    public var pid: pid_t { process.pid }

    /// Stops nginx by its master's PID (its workers go with it).
    public func stop() { _ = process.stop(grace: .seconds(5)) }

    /// What one request through it answers: its status and body.
    public func get(_ path: String = "/") throws -> (status: Int, body: String) {
        try httpExchange(port: port, "GET \(path) HTTP/1.0\r\n\r\n", timeout: 5)
    }
}
