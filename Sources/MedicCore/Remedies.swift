/// What an `exec` step runs: a program and its arguments as an array, never a shell string.
/// Facts about the incident reach it only as `MEDIC_*` environment variables, so a unit name or
/// a log line full of shell metacharacters stays inert data.
public struct ExecCommand: Sendable, Equatable {
    /// The program (an absolute path) and its arguments.
    public var arguments: [String]
    /// The working directory (default `/`).
    public var workingDirectory: String
    /// The user to run as (default: medicd's own, root).
    public var user: String?
    /// At most this many bytes of its output (stdout and stderr together) go into the audit log.
    public var outputLimit: Int

    public init(arguments: [String], workingDirectory: String = "/", user: String? = nil, outputLimit: Int = 16_384) {
        self.arguments = arguments
        self.workingDirectory = workingDirectory
        self.user = user
        self.outputLimit = outputLimit
    }
}

/// Where a `notify` step sends: a webhook, or the journal.
public struct Receiver: Sendable, Equatable {
    /// The body a webhook receives.
    public enum Format: String, Sendable, Equatable, CaseIterable {
        /// Medic's own JSON document (incident, target, trigger, what was done, link-back id).
        case json
        /// Alertmanager's webhook payload (`version: "4"`, `alerts: [...]`).
        case alertmanager
        /// A Slack-compatible incoming-webhook body (`{"text": ...}`).
        case slack
    }

    public enum Kind: Sendable, Equatable {
        /// POST to an http:// or https:// URL, with retries and back-off.
        case webhook(url: String, format: Format, timeout: Duration, retries: Int)
        /// An entry in the journal at a syslog priority (0 emerg … 7 debug).
        case journal(priority: Int)
    }

    public var name: String
    public var kind: Kind

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// The receiver every playbook has: the journal, at priority `warning`.
    public static let journal = Receiver(name: "journal", kind: .journal(priority: 4))
    /// Where a human is called when no receiver is named `default`: the journal, at `crit`.
    public static let journalCritical = Receiver(name: "journal:crit", kind: .journal(priority: 2))
    /// The name of the receiver called when a human is needed.
    public static let defaultName = "default"

}

/// How much of a backend must stay in service when Medic takes a server out: at least
/// `share` of its servers and at least `count` of them, counting servers that are down or in
/// maintenance for any reason as out.
public struct PoolCapacity: Sendable, Equatable, CustomStringConvertible {
    public var share: Double
    public var count: Int

    public init(share: Double = 0.5, count: Int = 1) {
        self.share = share
        self.count = count
    }

    /// The number of servers of a backend of `total` that must stay in service.
    public func required(of total: Int) -> Int {
        max(count, Int((share * Double(total)).rounded(.up)))
    }

    public var description: String { "\(Int((share * 100).rounded()))% and at least \(count)" }
}
