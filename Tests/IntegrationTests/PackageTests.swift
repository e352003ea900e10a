import Foundation
import MedicCore
import TestHost
import Testing

/// The Debian package (`scripts/package`), installed, upgraded, removed and purged with dpkg on
/// fresh test hosts, with no Swift toolchain on the PATH.
@Suite("The Debian package, on test hosts", .serialized, .timeLimit(.minutes(10)))
struct PackageTests {
    /// The release binaries `scripts/test` builds; the packages are made from them here.
    static let release = Paths.packageRoot + "/.build/release"

    /// Builds the package at `version` from the release binaries, into `directory`.
    static func package(_ version: String, into directory: String) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: release + "/medicd") else {
            throw TestHostError.setup("no release build in \(release): scripts/test builds it (release_build in scripts/env.sh, for medicd, medic and generate-manual)")
        }
        try runProgram("/bin/bash", [Paths.packageRoot + "/scripts/package", "--from", release, "--version", version, "--output", directory])
        return directory + "/medic_\(version)_\(try runProgram("/usr/bin/dpkg", ["--print-architecture"]).trimmingCharacters(in: .whitespacesAndNewlines)).deb"
    }

    /// The same package at a higher `version`: unpacked, its control file's version changed,
    /// and packed again (quickly compressed: it is only the upgrade's).
    static func repack(_ deb: String, version: String) throws -> String {
        let tree = deb + ".tree"
        try runProgram("/usr/bin/dpkg-deb", ["-R", deb, tree])
        defer { try? FileManager.default.removeItem(atPath: tree) }
        let control = try String(contentsOfFile: tree + "/DEBIAN/control", encoding: .utf8)
        let changed = control.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasPrefix("Version: ") ? "Version: \(version)" : String($0) }
        try changed.joined(separator: "\n").write(toFile: tree + "/DEBIAN/control", atomically: true, encoding: .utf8)
        let repacked = deb.replacingOccurrences(of: "/medic_", with: "/medic-next_")
        try runProgram("/usr/bin/dpkg-deb", ["--root-owner-group", "-Zzstd", "--build", tree, repacked])
        return repacked
    }

    /// A command inside the host with only the system's PATH (no toolchain on it).
    @discardableResult
    static func run(_ host: TestHost, _ command: String) throws -> String {
        try host.runInside(["/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8", "/bin/sh", "-c", command])
    }

    /// `medic incidents --json`, one object per incident.
    static func incidents(_ host: TestHost) throws -> [[String: Any]] {
        try run(host, "medic incidents --json").split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    @Test("dpkg -i on a fresh host: enabled and active, medic status answers, a crash is healed; an upgrade with an incident open restarts medicd, which takes it up and closes it, the chain verifying across; an edited config survives; remove keeps the audit log, purge removes it; lintian reports no error")
    func lifecycle() async throws {
        let dir = Paths.packageRoot + "/.build/deb-test"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let old = try Self.package("\(MedicVersion.string)-1", into: dir)
        let new = try Self.repack(old, version: "\(MedicVersion.string)-2")
        let lint = try runProgram("/usr/bin/lintian", ["--fail-on", "error", old])
        #expect(!lint.contains("E: "), "\(lint)")

        try await withTestHost("package") { host in
            try host.installUnit("web.service", try backendUnit(port: freePort()), persistent: true)
            try Self.run(host, "systemctl daemon-reload && systemctl start web.service")
            #expect(try Self.run(host, "command -v swift || echo none") == "none\n")

            // A machine built from a container image carries Docker's policy-rc.d (exit 101: no
            // service starts on install); a Debian host does not. The host's root is an overlay:
            // removing it here leaves the machine's own alone.
            try Self.run(host, "rm -f /usr/sbin/policy-rc.d")
            // Install: the package alone, its dependencies already on a Debian host.
            try Self.run(host, "dpkg -i \(old)")
            #expect(try Self.run(host, "systemctl is-enabled medic.service") == "enabled\n")
            let active = await eventually { ((try? Self.run(host, "systemctl is-active medic.service")) ?? "") == "active\n" }
            #expect(active, "\((try? Self.run(host, "journalctl --no-pager -n 40 -u medic.service")) ?? "")")
            #expect(!(try Self.run(host, "ldd /usr/bin/medicd /usr/bin/medic")).contains("swift"), "the Swift runtime is linked in")
            #expect(try Self.run(host, "medic --version") == "\(MedicVersion.string)\n")
            #expect(try Self.run(host, "medic status").hasPrefix("medicd pid "))
            #expect(try Self.run(host, "ls /usr/share/doc/medic/examples/playbooks").contains("web-backend.yaml"))
            #expect(try Self.run(host, "ls /usr/share/man/man1").contains("medicd.1.gz"))
            #expect(try Self.run(host, "stat -c '%a' /var/lib/medic") == "700\n")

            // An operator enables a playbook and edits the config; a crash is healed.
            try Self.run(host, """
                printf 'playbook: web\\ntargets: [ { unit: web.service } ]\\nguards: { stabilise: 8s }\\non:\\n  - when: crashed\\n    do: [ restart, { verify: { healthy: within 30s } } ]\\n' > /etc/medic/playbooks/web.yaml
                sed -i 's/^  interval: 5s$/  interval: 2s/' /etc/medic/medic.yaml
                medic check && systemctl reload medic.service
                """)
            #expect(await eventually { ((try? Self.run(host, "medic status")) ?? "").contains("playbooks: web") })
            kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
            #expect(await eventually(timeout: .seconds(20)) { ((try? Self.incidents(host)) ?? []).first?["status"] as? String == "recovered" },
                    "\((try? Self.run(host, "medic audit")) ?? "")")

            // Upgrade while an incident is open (stabilising for 8 s): the new medicd takes it up.
            kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
            #expect(await eventually(timeout: .seconds(15)) { ((try? Self.run(host, "medic audit --kind step-result")) ?? "").components(separatedBy: "restart succeeded").count == 3 })
            let all = try Self.incidents(host)
            #expect(all.filter { $0["status"] as? String == "open" }.count == 1, "\(all)")
            let pid = try Self.run(host, "systemctl show -p MainPID --value medic.service")
            try Self.run(host, "dpkg -i \(new)")
            #expect(try Self.run(host, "dpkg-query -W -f '${Version}' medic") == "\(MedicVersion.string)-2")
            #expect(try Self.run(host, "systemctl show -p MainPID --value medic.service") != pid, "the upgrade did not restart medicd")
            let closed = await eventually(timeout: .seconds(30)) {
                ((try? Self.incidents(host)) ?? []).filter { $0["status"] as? String == "recovered" }.count == 2
            }
            let audit = (try? Self.run(host, "medic audit")) ?? ""
            #expect(closed, "\(audit)")
            #expect(audit.contains("taking up incident"), "\(audit)")
            #expect(try Self.run(host, "medic audit verify").contains("chain intact"))
            #expect(try Self.run(host, "grep -c '^  interval: 2s$' /etc/medic/medic.yaml") == "1\n", "the edited config was replaced")

            // Remove: the service is gone, the audit log stays (it is evidence), and so does the config.
            try Self.run(host, "dpkg -r medic")
            #expect(((try? Self.run(host, "systemctl is-active medic.service")) ?? "inactive\n") != "active\n")
            #expect(try Self.run(host, "test -e /usr/bin/medicd && echo there || echo gone") == "gone\n")
            #expect(try Self.run(host, "test -s /var/lib/medic/audit.sqlite && echo kept") == "kept\n")
            #expect(try Self.run(host, "test -e /etc/medic/medic.yaml && echo kept") == "kept\n")

            // Purge: the state goes (the operator's own playbook is not the package's, and stays).
            try Self.run(host, "dpkg -P medic")
            #expect(try Self.run(host, "test -e /var/lib/medic && echo there || echo gone") == "gone\n")
            #expect(try Self.run(host, "test -e /etc/medic/medic.yaml && echo there || echo gone") == "gone\n")
            #expect(try Self.run(host, "test -e /etc/medic/playbooks/web.yaml && echo kept") == "kept\n")
        }
    }
}
