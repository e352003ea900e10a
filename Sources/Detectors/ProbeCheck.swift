import AsyncHTTPClient
import Foundation
import Glibc
import HTTPExchange
import MedicCore
import Posix
import Systemd
import NIOCore
import NIOPosix

/// What one probe said.
public struct ProbeResult: Sendable, Equatable {
    public var passed: Bool
    /// `HTTP 503`, `connection refused`, `exit status 1`, `timed out after 1s`.
    public var detail: String
    public var latency: Duration
}

/// Runs one probe: HTTP (status, optional body text, latency limit), TCP connect, or a program's
/// exit code. Every check ends within its timeout; a hung program is killed with its process group.
public struct ProbeCheck: Sendable {
    private let client: HTTPClient

    public init(client: HTTPClient = .shared) { self.client = client }

    public func run(_ probe: Probe) async -> ProbeResult {
        let started = ContinuousClock.now
        var (passed, detail) = await check(probe)
        let latency = ContinuousClock.now - started
        if passed, let limit = probe.latency, latency > limit {
            passed = false
            detail += ", but slower than \(DurationText.format(limit))"
        }
        return ProbeResult(passed: passed, detail: detail, latency: latency)
    }

    private func check(_ probe: Probe) async -> (Bool, String) {
        switch probe.kind {
        case .http(let url): return await http(url, expect: probe.expect, timeout: probe.timeout)
        case .tcp(let address): return await tcp(address, timeout: probe.timeout)
        case .exec(let command): return await exec(command, timeout: probe.timeout)
        }
    }

    /// A 2xx or 3xx answer passes; a 5xx (503 above all) or 4xx fails. The whole answer must
    /// come within the timeout: a server that sends its head and hangs is a failed probe.
    private func http(_ url: String, expect: String?, timeout: Duration) async -> (Bool, String) {
        do {
            let answer = try await client.exchange(HTTPClientRequest(url: url), timeout: timeout, upTo: 64 * 1024)
            let status = Int(answer.status.code)
            var detail = "HTTP \(status)"
            var passed = (200..<400).contains(status)
            if let expect, !answer.text.contains(expect) {
                passed = false
                detail += ", body lacks '\(expect)'"
            }
            return (passed, detail)
        } catch {
            return (false, "\(error)")
        }
    }

    private func tcp(_ address: String, timeout: Duration) async -> (Bool, String) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            return (false, "'\(address)' is not HOST:PORT")
        }
        let host = String(address[..<colon])
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.milliseconds(timeout.milliseconds))
                .connect(host: host, port: port).get()
            try? await channel.close()
            return (true, "connected")
        } catch {
            return (false, "\(error)")
        }
    }

    /// Runs the program (an argument array, no shell, in its own process group, killed at the
    /// timeout), on a thread of its own; exit status 0 passes.
    private func exec(_ command: [String], timeout: Duration) async -> (Bool, String) {
        let run = await onThreadOfItsOwn("medic-probe") {
            ProgramRun.run(command, environment: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"], timeout: timeout, outputLimit: 512)
        }
        if run.error != 0 { return (false, "cannot run \(command[0]): \(run.failedCall ?? "?"): \(PosixError.reason(run.error))") }
        if run.timedOut { return (false, "timed out after \(DurationText.format(timeout)); killed") }
        if let signal = run.signal { return (false, "killed by signal \(signal)") }
        return (run.exitCode == 0, "exit status \(run.exitCode ?? -1)")
    }
}
