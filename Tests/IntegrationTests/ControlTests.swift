import Audit
import Foundation
import Glibc
import MedicCore
import Posix
import Systemd
import TestHost
import Testing

/// Sends raw bytes to a control socket and returns the answer.
private func rawRequest(_ bytes: [UInt8], to path: String) throws -> String {
    let socket = try unixConnection(path: path)
    defer { socket.close() }
    try? socket.send(bytes)
    return String(decoding: (try? socket.receiveAll()) ?? [], as: UTF8.self)
}

@Suite("The control socket and the commands that use it, on a real systemd", .serialized, .timeLimit(.minutes(5)))
struct ControlTests {
    @Test("status, pause and resume, run by hand, reload: each through the socket, each change audited with the caller's uid")
    func commands() async throws {
        try await withTestHost("control") { host in
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: freePort())], start: ["web.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "web.service", verify: "0s"))
            defer { medicd.process.stop() }
            let status = try medic(["status", "--socket", medicd.socket])
            #expect(status.status == 0, "\(status.output)")
            #expect(status.output.contains("web.service") && status.output.contains("healthy") && status.output.contains("playbooks: test"), "\(status.output)")
            let json = try medic(["status", "--json", "--socket", medicd.socket])
            let object = try JSONDecoder().decode([String: AnyCodable].self, from: Data(json.output.utf8))
            #expect(object["engine"] != nil && object["pid"] != nil)

            // Paused: a crash is recorded and held; resumed: the restart runs.
            #expect(try medic(["pause", "web.service", "--socket", medicd.socket]).status == 0)
            kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
            #expect(await eventually { ((try? medicd.records(kinds: [.guardStopped]).contains { $0.facts["guard"] == "paused" }) ?? false) })
            try await Task.sleep(for: .milliseconds(300))
            #expect(try medicd.records(kinds: [.stepIntent]).isEmpty)
            let paused = try medic(["status", "--socket", medicd.socket])
            #expect(paused.output.contains("paused: needs a human") && paused.output.contains("web.service  UNHEALTHY  yes"), "\(paused.output)")
            #expect(try medic(["resume", "web.service", "--socket", medicd.socket]).status == 0)
            #expect(await eventually { ((try? medicd.records(kinds: [.incidentClosed]).contains { $0.facts["outcome"] == "recovered" }) ?? false) })
            let commands = try medicd.records(kinds: [.humanCommand])
            #expect(commands.map { $0.facts["command"] } == ["pause", "resume"])
            #expect(commands.allSatisfy { $0.actor == "uid 0 (root)" }, "\(commands.map(\.actor))")

            // Run by hand: the playbook's plan runs now, guards and all.
            let run = try medic(["run", "test", "--target", "web.service", "--socket", medicd.socket])
            #expect(run.status == 0, "\(run.output)")
            #expect(await eventually { ((try? medicd.records(kinds: [.incidentClosed]).count) ?? 0) == 2 })
            #expect(try medicd.records(kinds: [.stepIntent]).filter { $0.step == "restart" }.count == 2)
            let unknown = try medic(["run", "nope", "--target", "web.service", "--socket", medicd.socket])
            #expect(unknown.status == 1 && unknown.output.contains("no playbook 'nope' is loaded (loaded: test)"))

            let reload = try medic(["reload", "--socket", medicd.socket])
            #expect(reload.status == 0 && reload.output.contains("reloaded 1 playbooks"), "\(reload.output)")
            #expect(try medicd.records(kinds: [.daemon]).contains { $0.message == "reloaded 1 playbooks" && $0.actor == "uid 0 (root)" })

            let none = try medic(["status", "--socket", host.directory + "/nothing.sock"])
            #expect(none.status == 3 && none.output.contains("medicd is not running"), "\(none.output)")
        }
    }

    @Test("an unprivileged uid may read the status if in the socket's group, but cannot silence or trigger; a 10 MB or malformed request is refused and the daemon goes on")
    func refusals() async throws {
        try await withTestHost("control-perm") { host in
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: freePort())], start: ["web.service"])
            defer { manager.bus.close() }
            chmod(host.directory, 0o755)
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "web.service"), arguments: ["--control-group", "nogroup"])
            defer { medicd.process.stop() }
            chmod(host.directory + "/medicd", 0o755)
            var info = stat()
            #expect(stat(medicd.socket, &info) == 0 && info.st_mode & 0o777 == 0o660 && info.st_uid == 0)

            let read = try medicAsNobody(["status", "--socket", medicd.socket])
            #expect(read.status == 0, "\(read.output)")
            let silence = try medicAsNobody(["silence", "web.service", "--for", "1h", "--reason", "x", "--socket", medicd.socket])
            #expect(silence.status == 1 && silence.output.contains("permission denied: silence changes what Medic does; only root may"), "\(silence.output)")
            let run = try medicAsNobody(["run", "test", "--target", "web.service", "--socket", medicd.socket])
            #expect(run.status == 1 && run.output.contains("permission denied"))
            #expect(try medicd.records(kinds: [.humanCommand, .silence]).isEmpty)
            // Each refusal is audited: who, what, why.
            let audited = try medicd.records(kinds: [.daemon]).filter { $0.facts["refused"] != nil }
            #expect(audited.contains { $0.facts["refused"] == "silence" && $0.actor == "uid 65534 (nobody)" && $0.message.contains("permission denied") },
                    "\(audited.map { "\($0.actor) \($0.message)" })")

            let huge = try rawRequest([UInt8](repeating: UInt8(ascii: "x"), count: 10_000_000), to: medicd.socket)
            #expect(huge.contains("request too large"), "\(huge)")
            let malformed = try rawRequest(Array("{\"command\": \"launch-missiles\"}\n".utf8), to: medicd.socket)
            #expect(malformed.contains("malformed request"), "\(malformed)")
            // A flood of refused requests cannot fill the audit log: at most 10 a minute are
            // recorded, and the next record counts the rest.
            for _ in 0..<50 { _ = try rawRequest(Array("garbage\n".utf8), to: medicd.socket) }
            let recorded = try medicd.records(kinds: [.daemon]).filter { $0.facts["refused"] != nil }
            #expect(recorded.count <= 10, "\(recorded.count) refusals recorded in a minute")
            #expect(medicd.process.isRunning)
            #expect(try medic(["status", "--socket", medicd.socket]).status == 0)
        }
    }
}

extension ControlTests {
    @Test("a member of only the admin group can connect and change what Medic does")
    func adminGroupConnects() async throws {
        try await withTestHost("control-admin") { host in
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: freePort())], start: ["web.service"])
            defer { manager.bus.close() }
            chmod(host.directory, 0o755)
            let medicd = try RunningMedicd.start(
                on: host, playbook: playbook(unit: "web.service"), arguments: ["--control-group", "nogroup", "--admin-group", "daemon"])
            defer { medicd.process.stop() }
            chmod(host.directory + "/medicd", 0o755)
            let admin = try medicAs(["--reuid=nobody", "--regid=daemon", "--clear-groups"],
                                    ["silence", "web.service", "--for", "1h", "--reason", "deploy", "--socket", medicd.socket])
            #expect(admin.status == 0, "\(admin.output)")
            #expect(try medicd.records(kinds: [.silence]).contains { $0.actor == "uid 65534 (nobody)" })
            let stranger = try medicAs(["--reuid=nobody", "--regid=nogroup", "--clear-groups"],
                                       ["unsilence", "web.service", "--socket", medicd.socket])
            #expect(stranger.status == 1, "\(stranger.output)")
        }
    }
}
