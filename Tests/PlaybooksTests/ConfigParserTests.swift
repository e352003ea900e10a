import Foundation
import MedicCore
import Playbooks
import Testing

private func parse(_ text: String) -> Result<DaemonConfig, Diagnostics> {
    ConfigParser.parse(data: Array(text.utf8), file: "medic.yaml")
}

private func problems(_ text: String) -> [String] {
    guard case .failure(let diagnostics) = parse(text) else { return [] }
    return diagnostics.all.map(\.description)
}

@Suite("The config file")
struct ConfigParserTests {
    @Test("the shipped config is valid and says what the built-in defaults are")
    func shipped() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: root + "/config/medic.yaml")))
        var config = try ConfigParser.parse(data: data, file: "config/medic.yaml").get()
        #expect(config.defaults.receivers["ops-journal"]?.kind == .journal(priority: 4))
        #expect(config.controlSocketPath == DaemonConfig().controlSocketPath)
        config.file = nil
        config.controlSocket = nil
        config.defaults.receivers = [:]
        #expect(config == DaemonConfig())
    }

    @Test("every setting is read")
    func everySetting() throws {
        let config = try parse("""
            playbooks: /srv/medic/playbooks
            state: /srv/medic/state
            runtime: /run/medic2
            journal: /var/log/journal
            bus: unix:path=/run/dbus/system_bus_socket
            dry_run: true
            control: { socket: /run/medic2/ctl.sock, group: daemon, admin_group: root }
            metrics: { listen: "[::1]:9999" }
            sampling: { interval: 250ms, cgroup_root: /sys/fs/cgroup/unified }
            retention: { keep_for: 30d, max_size: 256MiB }
            guards: { rate: { restart: 5 in 1m }, stabilise: 10s }
            receivers: { oncall: { webhook: "http://127.0.0.1:9/hook", format: slack } }
            """).get()
        #expect(config.playbooks == "/srv/medic/playbooks" && config.state == "/srv/medic/state" && config.runtime == "/run/medic2")
        #expect(config.journal == "/var/log/journal" && config.bus == "unix:path=/run/dbus/system_bus_socket" && config.dryRun)
        #expect(config.controlSocketPath == "/run/medic2/ctl.sock" && config.controlGroup == "daemon" && config.adminGroup == "root")
        #expect(config.metricsListen == "[::1]:9999" && ListenAddress("[::1]:9999") == ListenAddress(host: "::1", port: 9999))
        #expect(config.sampleInterval == .milliseconds(250) && config.cgroupRoot == "/sys/fs/cgroup/unified")
        #expect(config.retainFor == .seconds(30 * 86_400) && config.retainSize == 256 << 20)
        #expect(config.defaults.guards.rates[.restart] == RateLimit(count: 5, window: .seconds(60)))
        #expect(config.defaults.guards.rates[.reboot] == Guards().rates[.reboot])
        #expect(config.defaults.guards.stabilise == .seconds(10))
        #expect(config.defaults.receivers["oncall"] != nil)
        #expect(try parse("metrics: { listen: off }").get().metricsListen == nil)
    }

    @Test("every problem is reported at its file:line:column, with what would be valid")
    func problemsWithPositions() {
        let found = problems("""
            playbooks: etc/medic/playbooks
            stat: /var/lib/medic
            control: { group: no-such-group-here }
            metrics: { listen: 9466 }
            sampling: { interval: 10ms }
            retention: { keep_for: 5m, max_size: lots }
            guards: { rate: { restart: often } }
            receivers: { pager: { webhook: "ftp://x" } }
            """)
        #expect(found.contains("medic.yaml:1:12: 'playbooks' must be an absolute path (starting with /); found 'etc/medic/playbooks'"), "\(found)")
        #expect(found.contains { $0.hasPrefix("medic.yaml:2:1: unknown key 'stat' in the config (did you mean 'state'?)") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("medic.yaml:3:19: 'control.group': no group 'no-such-group-here' on this host") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("medic.yaml:4:20: 'metrics.listen' must be HOST:PORT") }, "\(found)")
        #expect(found.contains("medic.yaml:5:23: 'sampling.interval' must be at least 50ms"), "\(found)")
        #expect(found.contains("medic.yaml:6:24: 'retention.keep_for' must be at least 1h"), "\(found)")
        #expect(found.contains { $0.hasPrefix("medic.yaml:6:38: 'retention.max_size' must be a size") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("medic.yaml:7:28: 'rate.restart' must be 'N in DURATION'") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("medic.yaml:8:33: 'ftp://x' is not an http:// or https:// URL") }, "\(found)")
        #expect(found.count == 9, "\(found)")
        #expect(problems("- a list").first?.hasPrefix("medic.yaml:1:1: the config must be a mapping") == true)
        #expect(problems("state: [unclosed").first?.contains("YAML syntax") == true)
    }

    @Test("the config's guards are where each playbook starts, and its receivers are there for any playbook to notify")
    func defaultsReachPlaybooks() throws {
        let config = try parse("""
            guards: { rate: { restart: 1 in 1h }, cooldown: 2m }
            receivers: { oncall: { journal: crit } }
            """).get()
        let text = """
            playbook: web
            targets: [ { unit: web.service } ]
            guards: { cooldown: 5s }
            on:
              - when: crashed
                do: [ restart, { notify: oncall } ]
            """
        let playbook = try PlaybookParser.parse(data: Array(text.utf8), file: "web.yaml", defaults: config.defaults).get()
        #expect(playbook.guards.rates[.restart] == RateLimit(count: 1, window: .seconds(3600)))
        #expect(playbook.guards.cooldown == .seconds(5))
        #expect(playbook.receiver("oncall")?.kind == .journal(priority: 2))
        // Without the config, the same playbook names a receiver that does not exist.
        guard case .failure(let diagnostics) = PlaybookParser.parse(data: Array(text.utf8), file: "web.yaml") else {
            Issue.record("a notify to an undefined receiver was accepted")
            return
        }
        #expect(diagnostics.description.contains("'notify' names no receiver 'oncall'"))
    }

    @Test("a config file or directory anyone but root can write is refused, naming its mode")
    func strictModes() throws {
        let dir = NSTemporaryDirectory() + "/medic-config-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755)
        try "dry_run: true\n".write(toFile: dir + "/medic.yaml", atomically: true, encoding: .utf8)
        chmod(dir + "/medic.yaml", 0o644)
        #expect(try ConfigParser.parse(file: dir + "/medic.yaml").get().dryRun)
        chmod(dir + "/medic.yaml", 0o664)
        #expect(throws: Diagnostics.self) { try ConfigParser.parse(file: dir + "/medic.yaml").get() }
        guard case .failure(let diagnostics) = ConfigParser.parse(file: dir + "/medic.yaml") else { return }
        #expect(diagnostics.description.contains("medic.yaml is writable by group or others (mode 0664)"))
        chmod(dir + "/medic.yaml", 0o644)
        chmod(dir, 0o775)
        guard case .failure(let again) = ConfigParser.parse(file: dir + "/medic.yaml") else {
            Issue.record("a config in a group-writable directory was accepted")
            return
        }
        #expect(again.description.contains("\(dir) is writable by group or others (mode 0775)"))
    }

    @Test("alertmanager: off unless configured; its listener, token file, TLS and body limit, each problem at its place")
    func alertmanager() throws {
        #expect(try parse("dry_run: false\n").get().alertmanager == nil)
        let config = try parse("alertmanager:\n  listen: 127.0.0.1:9467\n  token_file: /etc/medic/am.token\n  tls: { cert: /etc/medic/am.crt, key: /etc/medic/am.key }\n  max_body: 256KiB\n").get()
        let receiver = try #require(config.alertmanager)
        #expect(receiver.listen == "127.0.0.1:9467" && receiver.tokenFile == "/etc/medic/am.token" && receiver.maximumBody == 256 * 1024)
        #expect(receiver.certificateFile == "/etc/medic/am.crt" && receiver.keyFile == "/etc/medic/am.key")
        #expect(problems("alertmanager:\n  listen: 127.0.0.1:9467\n").contains { $0.contains("medic.yaml:2:3: 'alertmanager' needs 'token_file'") })
        #expect(problems("alertmanager:\n  listen: nowhere\n  token_file: /t\n").contains { $0.contains("medic.yaml:2:11: 'alertmanager.listen' must be HOST:PORT") })
        #expect(problems("alertmanager:\n  listen: 127.0.0.1:1\n  token_file: t\n").contains { $0.contains("'alertmanager.token_file' must be an absolute path") })
        #expect(problems("alertmanager:\n  listen: 127.0.0.1:1\n  token_file: /t\n  tls: { cert: /c }\n").contains { $0.contains("'alertmanager.tls' needs both 'cert' and 'key'") })
        #expect(problems("alertmanager:\n  listen: 127.0.0.1:1\n  token_file: /t\n  max_body: 1TiB\n").contains { $0.contains("'alertmanager.max_body' must be a size from 1KiB to 64MiB") })
    }

    @Test("metrics on an address other than loopback are refused unless the config says public: true")
    func publicMetrics() throws {
        guard case .failure(let refused) = ConfigParser.parse(data: Array("metrics:\n  listen: 0.0.0.0:9466\n".utf8), file: "medic.yaml") else {
            Issue.record("metrics on 0.0.0.0 without public: true were accepted")
            return
        }
        #expect(refused.description.contains("medic.yaml:2:11: 'metrics.listen' 0.0.0.0:9466 is not a loopback address"), "\(refused)")
        let open = try ConfigParser.parse(data: Array("metrics: { listen: 0.0.0.0:9466, public: true }\n".utf8), file: "medic.yaml").get()
        #expect(open.metricsListen == "0.0.0.0:9466" && open.metricsPublic)
        for loopback in ["127.0.0.1:9466", "[::1]:9466", "localhost:9466"] {
            #expect(try ConfigParser.parse(data: Array("metrics: { listen: \"\(loopback)\" }\n".utf8), file: "medic.yaml").get().metricsListen == loopback)
        }
    }

    @Test("a FIFO, a directory or a socket where a YAML file should be is refused at once, named for what it is")
    func notRegularFiles() throws {
        let dir = NSTemporaryDirectory() + "/medic-fifo-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755)
        #expect(mkfifo(dir + "/medic.yaml", 0o644) == 0)
        #expect(mkfifo(dir + "/web.yaml", 0o644) == 0)
        try FileManager.default.createDirectory(atPath: dir + "/config.yaml", withIntermediateDirectories: true)
        chmod(dir + "/config.yaml", 0o755)
        // Nobody writes to the FIFOs: a blocking open would never return.
        for (result, kind) in [
            (ConfigParser.parse(file: dir + "/medic.yaml").map { _ in () }, "a FIFO (named pipe)"),
            (PlaybookParser.parse(file: dir + "/web.yaml").map { _ in () }, "a FIFO (named pipe)"),
            (ConfigParser.parse(file: dir + "/config.yaml").map { _ in () }, "a directory"),
        ] {
            guard case .failure(let diagnostics) = result else {
                Issue.record("accepted \(kind)")
                continue
            }
            #expect(diagnostics.description.contains("is \(kind), not a regular file"), "\(diagnostics)")
        }
        let loaded = PlaybookDirectory.load(files: [dir + "/web.yaml"])
        #expect(loaded.playbooks.isEmpty && loaded.refused.first?.1.description.contains("a FIFO") == true)
    }

    @Test("a config that is a symbolic link into a directory anyone can write is refused, as sshd would")
    func symlinkIntoWritableDirectory() throws {
        let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("medic-link-\(getpid())")
        let open = dir + "/open"
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755)
        chmod(open, 0o777)
        try "dry_run: true\n".write(toFile: open + "/real.yaml", atomically: true, encoding: .utf8)
        chmod(open + "/real.yaml", 0o644)
        try FileManager.default.createSymbolicLink(atPath: dir + "/medic.yaml", withDestinationPath: open + "/real.yaml")
        guard case .failure(let diagnostics) = ConfigParser.parse(file: dir + "/medic.yaml") else {
            Issue.record("a link into a world-writable directory was trusted")
            return
        }
        #expect(diagnostics.description.contains("is a symbolic link to \(open)/real.yaml"), "\(diagnostics)")
        #expect(diagnostics.description.contains("\(open) is writable by group or others (mode 0777)"), "\(diagnostics)")
        // The same link into a directory only root can write is fine.
        chmod(open, 0o755)
        #expect(try ConfigParser.parse(file: dir + "/medic.yaml").get().dryRun)
    }

    @Test("fleet: the name, this host's address for its peers, etcd's endpoints, the lease, credentials and TLS")
    func fleet() throws {
        let config = try parse("""
            fleet:
              name: web-eu
              host: web1
              address: 10.0.0.11:9467
              endpoints: [ "http://10.0.0.2:2379", "https://10.0.0.3:2379" ]
              lease_ttl: 6s
              keepalive: 2s
              user: host-web1
              password_file: /etc/medic/etcd-password
              tls: { ca: /etc/medic/etcd-ca.pem, cert: /etc/medic/web1.pem, key: /etc/medic/web1-key.pem }
              alone_grace: 1m
            """).get()
        let fleet = try #require(config.fleet)
        #expect(fleet.name == "web-eu" && fleet.host == "web1" && fleet.address == "10.0.0.11:9467" && fleet.prefix == "/medic/web-eu/")
        #expect(fleet.endpoints == ["http://10.0.0.2:2379", "https://10.0.0.3:2379"])
        #expect(fleet.leaseTTL == .seconds(6) && fleet.keepAlive == .seconds(2) && fleet.aloneGrace == .seconds(60))
        #expect(fleet.user == "host-web1" && fleet.passwordFile == "/etc/medic/etcd-password")
        #expect(fleet.caFile == "/etc/medic/etcd-ca.pem" && fleet.certificateFile == "/etc/medic/web1.pem" && fleet.keyFile == "/etc/medic/web1-key.pem")
        #expect(try parse("state: /x").get().fleet == nil)
    }

    @Test("a fleet section missing what it needs, or with a keep-alive that would lose the lease, is refused where it is wrong")
    func fleetProblems() {
        #expect(problems("fleet:\n  name: web\n") == [
            "medic.yaml:2:3: 'fleet' needs 'address': this host's HOST:PORT for its peers",
            "medic.yaml:2:3: 'fleet' needs 'endpoints': etcd's client URLs",
        ])
        let found = problems("""
            fleet:
              name: "web eu"
              address: web1
              endpoints: [ "10.0.0.2:2379" ]
              lease_ttl: 3s
              keepalive: 2s
              user: host-web1
            """)
        #expect(found.contains { $0.hasPrefix("medic.yaml:2:10: 'fleet.name' must be letters") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("medic.yaml:3:12: 'fleet.address' must be HOST:PORT") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("medic.yaml:4:17: an etcd endpoint must be http://HOST:PORT") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("medic.yaml:7:9: 'fleet.user' and 'fleet.password_file' go together") }, "\(found)")
        let lease = problems("fleet: { name: w, address: 10.0.0.1:9467, endpoints: [ \"http://10.0.0.2:2379\" ], lease_ttl: 3s, keepalive: 2s }")
        #expect(lease.contains { $0.contains("'fleet.keepalive' (2s) must be at most half of 'fleet.lease_ttl' (3s)") }, "\(lease)")
    }
}
