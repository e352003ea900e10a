import Foundation
import MedicCore

/// medicd's settings, as `/etc/medic/medic.yaml` gives them; each path and listener can be
/// overridden by a flag. A setting the file leaves out keeps the default shown here.
public struct DaemonConfig: Sendable, Equatable {
    /// The file it was read from (nil: built-in defaults, no file).
    public var file: String?
    /// Directory of playbooks.
    public var playbooks = DefaultPaths.playbooks
    /// State directory: the audit log is STATE/audit.sqlite.
    public var state = DefaultPaths.state
    /// Runtime directory: the heartbeat and control sockets.
    public var runtime = DefaultPaths.runtime
    /// A journal directory to read instead of the local journal.
    public var journal: String?
    /// The system bus's address (nil: the system bus).
    public var bus: String?
    /// Record what would be done and do nothing.
    public var dryRun = false
    /// The control socket (nil: RUNTIME/control.sock).
    public var controlSocket: String?
    /// The group that may read the status through the control socket.
    public var controlGroup = "root"
    /// A group that may also change what Medic does; root always may.
    public var adminGroup: String?
    /// Where the Prometheus metrics are served, HOST:PORT (nil: not served).
    public var metricsListen: String? = "127.0.0.1:9466"
    /// Serve the metrics on an address other than loopback: the page has no authentication, so
    /// this must be said explicitly (`metrics: { listen: 0.0.0.0:9466, public: true }`).
    public var metricsPublic = false
    /// How often resources are sampled.
    public var sampleInterval: Duration = .seconds(5)
    /// Where systemd's ControlGroup= paths are found (nil: found out).
    public var cgroupRoot: String?
    /// Audit records are kept this long, and the log under this size.
    public var retainFor: Duration = .seconds(90 * 86_400)
    public var retainSize: Int64 = 1 << 30
    /// The fleet this host belongs to (nil: none, a fleet of one).
    public var fleet: FleetConfig?
    /// Where Alertmanager's webhook is received (nil: it is not; the default).
    public var alertmanager: AlertmanagerReceiver?
    /// Guards and receivers every playbook starts from.
    public var defaults = PlaybookDefaults()

    /// Where medicd looks when no `--config` is given.
    public static let defaultPath = DefaultPaths.config

    public init() {}

    /// The config file to read: the one given (`--config`), else the default path when it
    /// exists, else none (built-in defaults).
    public static func file(given: String?) -> String? {
        given ?? (FileManager.default.fileExists(atPath: defaultPath) ? defaultPath : nil)
    }

    /// The control socket in effect.
    public var controlSocketPath: String { controlSocket ?? runtime + "/control.sock" }

    /// The smallest sampling interval, retention age and retention size accepted.
    public static let minimumSampleInterval: Duration = .milliseconds(50)
    public static let minimumRetainFor: Duration = .seconds(3600)
    public static let minimumRetainSize: Int64 = 1 << 20
}

/// The `alertmanager:` section: a listener for Alertmanager's webhook, off unless configured.
public struct AlertmanagerReceiver: Sendable, Equatable {
    /// HOST:PORT; a loopback address unless the config names another.
    public var listen: String
    /// A file owned by root and readable by nobody else, holding the bearer token Alertmanager
    /// sends (its `http_config.authorization.credentials_file`).
    public var tokenFile: String
    /// TLS, when both are given.
    public var certificateFile: String?
    public var keyFile: String?
    /// The largest body taken, in bytes.
    public var maximumBody = 1 << 20

    public init(listen: String, tokenFile: String) {
        self.listen = listen
        self.tokenFile = tokenFile
    }

    /// The path the webhook is posted to.
    public static let path = "/alertmanager"
}
