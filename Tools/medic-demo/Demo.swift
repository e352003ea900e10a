import Foundation
import Posix
import Glibc
import Systemd
import TestHost

/// medic-demo: boots a disposable test host, runs a small HTTP backend in it as a systemd unit,
/// starts medicd against it, kills the backend with SIGKILL, and shows Medic healing it and the
/// audit log it wrote. Everything it starts is stopped again by PID, also when it is interrupted.
@main
struct Demo {
    static func main() async {
        Interruption.stopEverythingOnSignals()
        do {
            try await run()
        } catch {
            FileHandle.standardError.write(Data("medic-demo: \(error)\n".utf8))
            Interruption.exit { exit(1) }
        }
        Interruption.exit { exit(0) }
    }

    static func say(_ text: String) { print("\n==> \(text)") }

    static func run() async throws {
        let products = ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        let bin = (products as NSString).deletingLastPathComponent
        let port = freePort()

        say("Booting a disposable test host: a real systemd as PID 1 of its own namespaces")
        let backend = try Backend.path()
        let host = try TestHost(name: "demo", binds: [bin, Backend.packageRoot])
        defer {
            say("Powering the test host off and removing it")
            host.destroy()
        }
        print("    systemd PID \(host.systemdPID ?? 0), bus \(host.busAddress)")

        say("Installing web.service: a tiny HTTP backend on 127.0.0.1:\(port)")
        try host.installUnit("web.service", """
            [Unit]
            Description=Demo web backend
            [Service]
            ExecStart=\(backend) --port \(port) --name web
            """)
        let manager = SystemdManager(bus: try SystemBus(address: host.busAddress))
        defer { manager.bus.close() }
        try await manager.reload()
        _ = try await manager.startUnit("web.service")
        print("    GET http://127.0.0.1:\(port)/ → \(httpGet(port: port) ?? "no answer")")

        let work = host.directory + "/demo"
        try FileManager.default.createDirectory(atPath: work + "/playbooks", withIntermediateDirectories: true)
        let playbook = """
            playbook: web-backend
            targets:
              - unit: web.service
            guards:
              stabilise: 2s
            on:
              - when: crashed
                do:
                  - collect: { journal: 20 }
                  - restart: { timeout: 30s }
                  - verify: { healthy: within 10s, for: 1s }
            """
        try playbook.write(toFile: work + "/playbooks/web-backend.yaml", atomically: true, encoding: .utf8)
        say("Starting medicd with this playbook:")
        print(playbook.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
        let notify = try NotifyListener(directory: work)
        let medicd = try ChildProcess(
            bin + "/medicd",
            ["--playbooks", work + "/playbooks", "--state", work + "/state", "--bus", host.busAddress.description],
            environment: ["NOTIFY_SOCKET": notify.path], logPath: work + "/medicd.log")
        defer { medicd.stop() }
        guard let ready = notify.wait(for: "READY=1", timeout: .seconds(20)) else {
            throw TestHostError.boot("medicd did not become ready:\n\(medicd.output)")
        }
        print("    medicd (PID \(medicd.pid)) says: \(ready.replacingOccurrences(of: "\n", with: "; "))")

        let before = try await manager.state(of: "web.service")
        guard let pid = host.processes(ofUnit: "web.service").first else { throw TestHostError.command("web.service has no process") }
        say("kill -9 \(pid): the backend's main process dies, as in a crash")
        let killedAt = ContinuousClock.now
        kill(pid, SIGKILL)
        var serving: Duration?
        var active: Duration?
        while ContinuousClock.now - killedAt < .seconds(15), serving == nil {
            if active == nil, let state = try? await manager.state(of: "web.service"),
               state.activeState == "active", let main = state.mainPID, main != 0, main != before.mainPID {
                active = ContinuousClock.now - killedAt
            }
            if active != nil, httpGet(port: port) != nil { serving = ContinuousClock.now - killedAt }
            try await Task.sleep(for: .milliseconds(2))
        }
        guard let serving, let active else { throw TestHostError.command("web.service did not come back:\n\(medicd.output)") }
        print("    web.service active again after \(format(active)), serving again after \(format(serving))")
        print("    GET http://127.0.0.1:\(port)/ → \(httpGet(port: port) ?? "no answer")")

        say("Waiting for medicd to verify the recovery (healthy for 1s, then stable for 2s)")
        let medic = bin + "/medic"
        for _ in 0..<400 {
            if shell(medic, ["audit", "--state", work + "/state", "--kind", "incident-closed"]).contains("recovered") { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        say("medic audit --state \(work)/state")
        print(shell(medic, ["audit", "--state", work + "/state"]))
        let page = FileManager.default.temporaryDirectory.path + "/medic-demo-incident-1.html"
        say("medic report 1 --format html --output \(page)")
        _ = shell(medic, ["report", "1", "--state", work + "/state", "--format", "html", "--output", page])
        print("    the post-mortem page, timeline drawn, kept after the demo: open \(page) in a browser")
        say("medicd's own log (stdout, with journald priority prefixes)")
        print(medicd.output)
    }

    static func format(_ d: Duration) -> String {
        String(format: "%.1f ms", Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
    }

    /// Runs a program and returns its standard output.
    static func shell(_ executable: String, _ arguments: [String]) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        guard (try? process.run()) != nil else { return "" }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// A minimal HTTP GET on loopback; returns the body's first line, or nil if nothing answers.
    static func httpGet(port: Int) -> String? {
        guard let socket = try? Socket.connect(to: .loopback(port), timeout: .seconds(2)) else { return nil }
        defer { socket.close() }
        guard (try? socket.send("GET / HTTP/1.0\r\n\r\n")) != nil, let bytes = try? socket.receive(maximum: 1024), !bytes.isEmpty else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        return text.components(separatedBy: "\r\n\r\n").last?.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
