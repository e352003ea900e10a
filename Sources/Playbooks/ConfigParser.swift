import Glibc
import MedicCore
import Yams

/// Reads `/etc/medic/medic.yaml` into a `DaemonConfig`, or every problem in it with its
/// file:line:column. The file (and its directory) must pass `FileTrust`, as playbooks must.
public enum ConfigParser {
    /// Reads and validates a config file.
    public static func parse(file: String) -> Result<DaemonConfig, Diagnostics> {
        let directory = file.contains("/") ? String(file[..<file.lastIndex(of: "/")!]) : "."
        for path in [directory.isEmpty ? "/" : directory, file] {
            if let problem = FileTrust.problem(path) {
                return .failure(Diagnostics([Diagnostic(file: file, line: 1, column: 1, message: "refused: \(problem)")]))
            }
        }
        return YAMLDocument.read(file: file).flatMap { parse(data: $0, file: file) }
    }

    /// Validates a config's bytes. `file` is the name used in diagnostics.
    public static func parse(data: [UInt8], file: String) -> Result<DaemonConfig, Diagnostics> {
        switch YAMLDocument.compose(data: data, file: file, what: "the config", needs: "one setting, e.g. 'playbooks: /etc/medic/playbooks'") {
        case .failure(let diagnostics): return .failure(diagnostics)
        case .success(let root):
            var reader = ConfigReader(file: file)
            let config = reader.config(root)
            return YAMLDocument.result(config, reader.playbooks.nodes.diagnostics)
        }
    }
}

/// Reads the config's tree. Guards and receivers are read exactly as a playbook's are.
struct ConfigReader {
    /// The playbook reader lends its readers for `guards:` and `receivers:`; its `nodes` hold
    /// every problem found.
    var playbooks: PlaybookReader

    init(file: String) { playbooks = PlaybookReader(file: file) }

    static let topKeys = [
        "playbooks", "state", "runtime", "journal", "bus", "dry_run", "control", "metrics", "sampling", "retention", "guards", "receivers", "fleet",
        "alertmanager",
    ]

    mutating func config(_ root: Node) -> DaemonConfig? {
        guard let top = playbooks.nodes.mapping(root, what: "the config", allowed: Self.topKeys) else { return nil }
        var config = DaemonConfig()
        config.file = playbooks.file
        if let path = path(top["playbooks"], "'playbooks'") { config.playbooks = path }
        if let path = path(top["state"], "'state'") { config.state = path }
        if let path = path(top["runtime"], "'runtime'") { config.runtime = path }
        config.journal = path(top["journal"], "'journal'")
        config.bus = top["bus"].flatMap { playbooks.nodes.string($0.value, what: "'bus' (a D-Bus address)") }
        config.dryRun = top["dry_run"].flatMap { playbooks.nodes.bool($0.value, what: "'dry_run'") } ?? false
        if let node = top["control"]?.value, let keys = playbooks.nodes.mapping(node, what: "'control'", allowed: ["socket", "group", "admin_group"]) {
            config.controlSocket = path(keys["socket"], "'control.socket'")
            if let group = group(keys["group"], "'control.group'") { config.controlGroup = group }
            config.adminGroup = group(keys["admin_group"], "'control.admin_group'")
        }
        if let node = top["metrics"]?.value, let keys = playbooks.nodes.mapping(node, what: "'metrics'", allowed: ["listen", "public"]) {
            config.metricsPublic = keys["public"].flatMap { playbooks.nodes.bool($0.value, what: "'metrics.public'") } ?? false
            if let listen = keys["listen"]?.value {
                config.metricsListen = self.listen(listen)
                if let text = config.metricsListen, let address = ListenAddress(text), !address.isLoopback, !config.metricsPublic {
                    playbooks.nodes.report(listen, "'metrics.listen' \(text) is not a loopback address, and the metrics page has no authentication: "
                        + "serve it on 127.0.0.1 (or [::1]), or say 'public: true' beside it to serve it there anyway")
                }
            }
        }
        if let node = top["sampling"]?.value, let keys = playbooks.nodes.mapping(node, what: "'sampling'", allowed: ["interval", "cgroup_root"]) {
            if let interval = at(least: DaemonConfig.minimumSampleInterval, keys["interval"], "'sampling.interval'") { config.sampleInterval = interval }
            config.cgroupRoot = path(keys["cgroup_root"], "'sampling.cgroup_root'")
        }
        if let node = top["retention"]?.value, let keys = playbooks.nodes.mapping(node, what: "'retention'", allowed: ["keep_for", "max_size"]) {
            if let age = at(least: DaemonConfig.minimumRetainFor, keys["keep_for"], "'retention.keep_for'") { config.retainFor = age }
            if let node = keys["max_size"]?.value, let text = playbooks.nodes.string(node, what: "'retention.max_size'") {
                if let size = Quantity.parseSize(text), size >= Double(DaemonConfig.minimumRetainSize) {
                    config.retainSize = Int64(size)
                } else {
                    playbooks.nodes.report(node, "'retention.max_size' must be a size of at least 1MiB, e.g. 1GiB; found '\(text)'")
                }
            }
        }
        if let node = top["fleet"]?.value { config.fleet = fleet(node) }
        if let node = top["alertmanager"]?.value { config.alertmanager = alertmanager(node) }
        if let node = top["guards"]?.value, let guards = playbooks.guardSettings(node, base: Guards()) { config.defaults.guards = guards }
        if let node = top["receivers"]?.value { config.defaults.receivers = playbooks.receivers(node) }
        return config
    }

    static let fleetKeys = [
        "name", "host", "address", "endpoints", "lease_ttl", "keepalive", "user", "password_file", "tls", "alone_grace",
    ]

    /// The `fleet:` section: a name, this host's address for its peers, and etcd's endpoints.
    private mutating func fleet(_ node: Node) -> FleetConfig? {
        guard let keys = playbooks.nodes.mapping(node, what: "'fleet'", allowed: Self.fleetKeys) else { return nil }
        let name = keys["name"].flatMap { playbooks.nodes.string($0.value, what: "'fleet.name'") }
        if let name, name.isEmpty || !name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) {
            playbooks.nodes.report(keys["name"]?.value, "'fleet.name' must be letters, digits, '-', '_' or '.'; found '\(name)'")
        }
        var hostName = [UInt8](repeating: 0, count: 256)
        gethostname(&hostName, hostName.count)
        let host = keys["host"].flatMap { playbooks.nodes.string($0.value, what: "'fleet.host'") }
            ?? String(decoding: hostName.prefix { $0 != 0 }, as: UTF8.self)
        if host.isEmpty || host.contains("/") {
            playbooks.nodes.report(keys["host"]?.value ?? node, "'fleet.host' must be a name without '/'; found '\(host)'")
        }
        let address = keys["address"].flatMap { playbooks.nodes.string($0.value, what: "'fleet.address'") }
        if let text = address, ListenAddress(text) == nil {
            playbooks.nodes.report(keys["address"]?.value, "'fleet.address' must be HOST:PORT where peers reach this host's medicd, e.g. 10.0.0.11:9467; found '\(text)'")
        }
        var endpoints: [String] = []
        if let node = keys["endpoints"]?.value, let items = playbooks.nodes.sequence(node, what: "'fleet.endpoints'") {
            for item in items {
                guard let url = playbooks.nodes.string(item, what: "an etcd endpoint") else { continue }
                guard (url.hasPrefix("http://") || url.hasPrefix("https://")), ListenAddress(String(url.drop { $0 != "/" }.dropFirst(2))) != nil else {
                    playbooks.nodes.report(item, "an etcd endpoint must be http://HOST:PORT or https://HOST:PORT; found '\(url)'")
                    continue
                }
                endpoints.append(url)
            }
        }
        for (key, what) in [("name", "the fleet's name"), ("address", "this host's HOST:PORT for its peers"), ("endpoints", "etcd's client URLs")] where keys[key] == nil {
            playbooks.nodes.report(node, "'fleet' needs '\(key)': \(what)")
        }
        var fleet = FleetConfig(name: name ?? "", host: host, address: address ?? "", endpoints: endpoints)
        if let ttl = at(least: .seconds(2), keys["lease_ttl"], "'fleet.lease_ttl'") { fleet.leaseTTL = ttl }
        if let interval = at(least: .milliseconds(100), keys["keepalive"], "'fleet.keepalive'") { fleet.keepAlive = interval }
        if fleet.keepAlive * 2 > fleet.leaseTTL {
            playbooks.nodes.report(keys["keepalive"]?.value ?? node, "'fleet.keepalive' (\(DurationText.format(fleet.keepAlive))) must be at most half of 'fleet.lease_ttl' (\(DurationText.format(fleet.leaseTTL))), a third is usual: one lost keep-alive must not lose the lease")
        }
        if let grace = at(least: .seconds(1), keys["alone_grace"], "'fleet.alone_grace'") { fleet.aloneGrace = grace }
        fleet.user = keys["user"].flatMap { playbooks.nodes.string($0.value, what: "'fleet.user'") }
        fleet.passwordFile = path(keys["password_file"], "'fleet.password_file'")
        if (fleet.user == nil) != (fleet.passwordFile == nil) {
            playbooks.nodes.report(keys["user"]?.value ?? keys["password_file"]?.value, "'fleet.user' and 'fleet.password_file' go together")
        }
        if let tls = keys["tls"]?.value, let files = playbooks.nodes.mapping(tls, what: "'fleet.tls'", allowed: ["ca", "cert", "key"]) {
            fleet.caFile = path(files["ca"], "'fleet.tls.ca'")
            fleet.certificateFile = path(files["cert"], "'fleet.tls.cert'")
            fleet.keyFile = path(files["key"], "'fleet.tls.key'")
            if (fleet.certificateFile == nil) != (fleet.keyFile == nil) {
                playbooks.nodes.report(tls, "'fleet.tls' needs both 'cert' and 'key' for a client certificate, or neither")
            }
        }
        return name == nil || address == nil || endpoints.isEmpty ? nil : fleet
    }

    /// The `alertmanager:` section: where the webhook is received, the token it must bring,
    /// TLS, the largest body.
    private mutating func alertmanager(_ node: Node) -> AlertmanagerReceiver? {
        guard let keys = playbooks.nodes.mapping(node, what: "'alertmanager'", allowed: ["listen", "token_file", "tls", "max_body"]) else { return nil }
        guard let listenNode = keys["listen"]?.value, let listen = playbooks.nodes.string(listenNode, what: "'alertmanager.listen'") else {
            playbooks.nodes.report(node, "'alertmanager' needs 'listen' (HOST:PORT, e.g. 127.0.0.1:9467)")
            return nil
        }
        guard ListenAddress(listen) != nil else {
            playbooks.nodes.report(listenNode, "'alertmanager.listen' must be HOST:PORT (e.g. 127.0.0.1:9467 or [::1]:9467); found '\(listen)'")
            return nil
        }
        guard let tokenFile = path(keys["token_file"], "'alertmanager.token_file'") else {
            if keys["token_file"] == nil {
                playbooks.nodes.report(node, "'alertmanager' needs 'token_file': a file only root can read, holding the bearer token Alertmanager sends")
            }
            return nil
        }
        var receiver = AlertmanagerReceiver(listen: listen, tokenFile: tokenFile)
        if let tls = keys["tls"]?.value, let files = playbooks.nodes.mapping(tls, what: "'alertmanager.tls'", allowed: ["cert", "key"]) {
            receiver.certificateFile = path(files["cert"], "'alertmanager.tls.cert'")
            receiver.keyFile = path(files["key"], "'alertmanager.tls.key'")
            if receiver.certificateFile == nil || receiver.keyFile == nil {
                playbooks.nodes.report(tls, "'alertmanager.tls' needs both 'cert' and 'key'")
            }
        }
        if let node = keys["max_body"]?.value, let text = playbooks.nodes.string(node, what: "'alertmanager.max_body'") {
            if let size = Quantity.parseSize(text), size >= 1024, size <= 64 * 1024 * 1024 {
                receiver.maximumBody = Int(size)
            } else {
                playbooks.nodes.report(node, "'alertmanager.max_body' must be a size from 1KiB to 64MiB, e.g. 1MiB; found '\(text)'")
            }
        }
        return receiver
    }

    /// An absolute path.
    private mutating func path(_ entry: (key: Node, value: Node)?, _ what: String) -> String? {
        guard let node = entry?.value, let text = playbooks.nodes.string(node, what: what) else { return nil }
        guard text.hasPrefix("/") else {
            playbooks.nodes.report(node, "\(what) must be an absolute path (starting with /); found '\(text)'")
            return nil
        }
        return text
    }

    /// A group that exists on this host.
    private mutating func group(_ entry: (key: Node, value: Node)?, _ what: String) -> String? {
        guard let node = entry?.value, let name = playbooks.nodes.string(node, what: what) else { return nil }
        guard getgrnam(name) != nil else {
            playbooks.nodes.report(node, "\(what): no group '\(name)' on this host (create it with groupadd, or name one in /etc/group)")
            return nil
        }
        return name
    }

    /// `HOST:PORT` (IPv4, `[IPv6]` or a name), or `off`; nil for off.
    private mutating func listen(_ node: Node) -> String? {
        guard let text = playbooks.nodes.string(node, what: "'metrics.listen'") else { return DaemonConfig().metricsListen }
        if text == "off" { return nil }
        guard ListenAddress(text) != nil else {
            playbooks.nodes.report(node, "'metrics.listen' must be HOST:PORT (e.g. 127.0.0.1:9466 or [::1]:9466) or off; found '\(text)'")
            return DaemonConfig().metricsListen
        }
        return text
    }

    private mutating func at(least minimum: Duration, _ entry: (key: Node, value: Node)?, _ what: String) -> Duration? {
        guard let node = entry?.value, let duration = playbooks.nodes.duration(node, what: what) else { return nil }
        guard duration >= minimum else {
            playbooks.nodes.report(node, "\(what) must be at least \(DurationText.format(minimum))")
            return nil
        }
        return duration
    }
}

/// A listener's `HOST:PORT`, split.
public struct ListenAddress: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Whether only this host can connect: 127.0.0.0/8, ::1 or localhost.
    public var isLoopback: Bool { host == "localhost" || host == "::1" || host.hasPrefix("127.") }

    /// Parses `127.0.0.1:9466`, `[::1]:9466` or `localhost:9466`; nil if it is none of them.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(" ") else { return nil }
        self.host = host
        self.port = port
    }
}
