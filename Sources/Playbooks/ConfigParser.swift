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
        "playbooks", "state", "runtime", "journal", "bus", "dry_run", "control", "metrics", "sampling", "retention", "guards", "receivers",
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
        if let node = top["guards"]?.value, let guards = playbooks.guardSettings(node, base: Guards()) { config.defaults.guards = guards }
        if let node = top["receivers"]?.value { config.defaults.receivers = playbooks.receivers(node) }
        return config
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
