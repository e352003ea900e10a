import Foundation
import Logging
import MedicCore
import Playbooks
import Testing
@testable import Daemon

/// A fresh directory under /tmp, with `files` written into it.
private func directory(_ files: [String: String] = [:]) throws -> String {
    var template = Array("/tmp/medic-daemon-XXXXXX".utf8CString)
    let path = String(cString: try #require(mkdtemp(&template)))
    for (name, text) in files {
        try FileManager.default.createDirectory(atPath: (path + "/" + name as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path + "/" + name, atomically: true, encoding: .utf8)
        chmod(path + "/" + name, 0o600)
    }
    return path
}

@Suite("medicd's settings and start-up, through the Daemon library")
struct StartupTests {
    @Test("each flag given overrides the config file; what the flags leave alone comes from the file")
    func flagsOverTheFile() throws {
        let dir = try directory(["medic.yaml": "state: /srv/medic-state\nplaybooks: /srv/playbooks\ndry_run: false\n"])
        let source = SettingsSource(configFlag: dir + "/medic.yaml", flags: FlagOverrides(state: dir + "/state", dryRun: true))
        let settings = try source.load().get()
        #expect(settings.state == dir + "/state")
        #expect(settings.playbooks == "/srv/playbooks")
        #expect(settings.dryRun)
    }

    @Test("an invalid config stops the start, naming the file, line and column; nothing else is opened")
    func invalidConfig() async throws {
        let dir = try directory(["medic.yaml": "state: " + "/x\nsampling:\n  interval: soon\n"])
        let source = SettingsSource(configFlag: dir + "/medic.yaml", flags: FlagOverrides(state: dir + "/state"))
        await #expect {
            _ = try await Daemon(source: source, logger: Logger(label: "test"))
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("the config is invalid") && text.contains(dir + "/medic.yaml:3:") && text.contains("interval")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/state/audit.sqlite"))
    }

    @Test("a bus that cannot be reached stops the start, and says where it looked")
    func noBus() async throws {
        let dir = try directory(["playbooks/.keep": ""])
        let source = SettingsSource(configFlag: nil, flags: FlagOverrides(
            playbooks: dir + "/playbooks", state: dir + "/state", runtime: dir + "/run", bus: "unix:path=\(dir)/no-bus"))
        await #expect {
            _ = try await Daemon(source: source, logger: Logger(label: "test"))
        } throws: { "\($0)".contains("cannot reach the system bus at unix:path=\(dir)/no-bus") }
    }

    @Test("a fleet's etcd password in a file others can read is refused at start, naming the file and its mode")
    func exposedSecret() async throws {
        let dir = try directory(["playbooks/.keep": "", "etcd-password": "secret\n"])
        chmod(dir + "/etcd-password", 0o644)
        try """
            fleet: { name: t, address: 127.0.0.1:9467, endpoints: [ "http://127.0.0.1:2379" ], user: host-a, password_file: \(dir)/etcd-password }
            """.write(toFile: dir + "/medic.yaml", atomically: true, encoding: .utf8)
        chmod(dir + "/medic.yaml", 0o600)
        let source = SettingsSource(configFlag: dir + "/medic.yaml", flags: FlagOverrides(
            playbooks: dir + "/playbooks", state: dir + "/state", runtime: dir + "/run", bus: "unix:path=/run/dbus/system_bus_socket"))
        await #expect {
            _ = try await Daemon(source: source, logger: Logger(label: "test"))
        } throws: { error in
            let text = "\(error)"
            return text.contains("fleet.password_file \(dir)/etcd-password must be owned by root and readable by nobody else") && text.contains("mode 0644")
        }
    }

    @Test("refusals on the control socket are audited at most 10 a minute; the next one says how many were not")
    func refusalLog() {
        let log = RefusalLog()
        let start = ContinuousClock.now
        #expect((0..<10).map { _ in log.admit(at: start) } == Array(repeating: 0, count: 10))
        #expect((0..<5).map { _ in log.admit(at: start + .seconds(1)) } == Array(repeating: nil, count: 5))
        #expect(log.admit(at: start + .seconds(61)) == 5)
    }
}
