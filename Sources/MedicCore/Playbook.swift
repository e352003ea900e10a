/// A validated playbook: which targets it looks after, what to do when something happens to
/// one of them, how to escalate, and the guards that keep a remedy from becoming an outage.
public struct Playbook: Sendable, Equatable {
    /// The playbook's name (`playbook:`).
    public var name: String
    /// The file it was loaded from.
    public var file: String
    /// SHA-256 of the file's bytes, so the audit log says exactly which version acted.
    public var contentHash: String
    /// Record what would be done, do nothing (`dry_run: true`).
    public var dryRun: Bool
    public var targets: [TargetSpec]
    public var rules: [Rule]
    public var guards: Guards
    /// Where `notify` steps send, by name (`journal` is always there).
    public var receivers: [String: Receiver]

    public init(
        name: String, file: String, contentHash: String, dryRun: Bool = false, targets: [TargetSpec], rules: [Rule],
        guards: Guards = Guards(), receivers: [String: Receiver] = [:]
    ) {
        self.name = name
        self.file = file
        self.contentHash = contentHash
        self.dryRun = dryRun
        self.targets = targets
        self.rules = rules
        self.guards = guards
        self.receivers = receivers
    }

    /// The receiver a `notify` step names.
    public func receiver(_ name: String) -> Receiver? {
        if let own = receivers[name] { return own }
        return [Receiver.journal, Receiver.journalCritical].first { $0.name == name }
    }

    /// Who is called when a human is needed (a plan that failed with no escalation left, a
    /// storm): the receiver named `default` (the playbook's, or medic.yaml's), else the journal
    /// at priority `crit`.
    public var humanReceiver: String {
        receivers[Receiver.defaultName] != nil ? Receiver.defaultName : Receiver.journalCritical.name
    }

    /// The target spec that covers `unit` (by name or glob), if any.
    public func target(for unit: String) -> TargetSpec? {
        targets.first { $0.selector.matches(unit) }
    }
}

/// What the daemon's config gives every playbook: the guards a playbook starts from before its
/// own `guards:`, and receivers any playbook's `notify` may name (a playbook's own receiver of
/// the same name wins).
public struct PlaybookDefaults: Sendable, Equatable {
    public var guards: Guards
    public var receivers: [String: Receiver]

    public init(guards: Guards = Guards(), receivers: [String: Receiver] = [:]) {
        self.guards = guards
        self.receivers = receivers
    }
}

/// What a target spec selects.
public enum TargetSelector: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// A systemd unit by name, or a glob of names (`web@*.service`).
    case unit(String)
    /// This host as a whole.
    case host
    /// The other hosts of the fleet whose names match this glob; each is the target `host/NAME`.
    case peers(String)

    /// The name the host target goes by in observations and the audit log.
    public static let hostName = "host"

    public func matches(_ name: String) -> Bool {
        switch self {
        case .unit(let pattern): Glob.matches(pattern, name)
        case .host: name == Self.hostName
        case .peers(let pattern): name.hasPrefix(Self.peerPrefix) && Glob.matches(pattern, String(name.dropFirst(Self.peerPrefix.count)))
        }
    }

    /// Whether it selects fleet peers.
    public var isPeers: Bool {
        if case .peers = self { true } else { false }
    }

    /// How a fleet peer's target name begins: `host/web2`.
    public static let peerPrefix = "host/"

    /// True for a unit glob rather than one name.
    public var isPattern: Bool {
        switch self {
        case .unit(let pattern), .peers(let pattern): pattern.contains { "*?[".contains($0) }
        case .host: false
        }
    }

    public var description: String {
        switch self {
        case .unit(let pattern): pattern
        case .host: Self.hostName
        case .peers(let pattern): Self.peerPrefix + pattern
        }
    }
}

/// One target of a playbook, with what the detectors need to watch it.
public struct TargetSpec: Sendable, Equatable {
    public var selector: TargetSelector
    /// Load-balancer pool membership.
    @OutOfLine public var pool: PoolMembership?
    @OutOfLine public var probe: Probe?
    @OutOfLine public var heartbeat: Heartbeat?
    /// Resource limits, each a trigger when held.
    public var limits: [ResourceLimit]
    /// Units this target needs; while one is unhealthy, this target is not remediated.
    public var dependsOn: [String]

    public init(
        selector: TargetSelector, pool: PoolMembership? = nil, probe: Probe? = nil, heartbeat: Heartbeat? = nil,
        limits: [ResourceLimit] = [], dependsOn: [String] = []
    ) {
        self.selector = selector
        self.pool = pool
        self.probe = probe
        self.heartbeat = heartbeat
        self.limits = limits
        self.dependsOn = dependsOn
    }
}

/// A server in a load balancer's backend. In `server`, `%i` stands for the instance of a
/// templated unit (`web%i` is server `web3` for `web@3.service`), as in systemd unit files.
public struct PoolMembership: Sendable, Equatable {
    /// The load balancer the pool lives in, and how Medic reaches it.
    public enum Balancer: Sendable, Equatable, Hashable {
        /// HAProxy's runtime API on its admin socket (a path, or `host:port`).
        case haproxy(socket: String)
        /// Varnish's CLI (`varnishd -T HOST:PORT`), authenticated with its secret file (`-S`).
        case varnish(cli: String, secretFile: String)
        /// nginx, which has no runtime API for its upstreams: Medic owns the file of an
        /// upstream's `server` lines that the upstream block includes, checks the whole
        /// configuration (`nginx -t -c CONFIG`) and reloads the master whose PID is in `pidFile`.
        case nginx(upstreamFile: String, config: String, pidFile: String)

        /// Where it is reached: the admin socket, the CLI's address or the upstream file.
        public var address: String {
            switch self {
            case .haproxy(let socket): socket
            case .varnish(let cli, _): cli
            case .nginx(let file, _, _): file
            }
        }

        /// `HAProxy`, `Varnish`, `nginx`.
        public var name: String {
            switch self {
            case .haproxy: "HAProxy"
            case .varnish: "Varnish"
            case .nginx: "nginx"
            }
        }
    }

    public var balancer: Balancer
    /// HAProxy's backend, Varnish's director, or nginx's upstream.
    public var backend: String
    /// HAProxy's server in the backend, Varnish's backend in the director, or the address of
    /// an nginx `server` line (`127.0.0.1:8081`).
    public var server: String
    /// What must stay in service when Medic takes this server out.
    public var capacity: PoolCapacity

    /// `backend/server at SOCKET`, for records.
    public static func describe(_ member: PoolMembership) -> String { "\(member.backend)/\(member.server) at \(member.balancer.address)" }

    public init(balancer: Balancer, backend: String, server: String, capacity: PoolCapacity = PoolCapacity()) {
        self.balancer = balancer
        self.backend = backend
        self.server = server
        self.capacity = capacity
    }

    /// A server of HAProxy's, reached on its admin socket.
    public init(haproxy: String, backend: String, server: String, capacity: PoolCapacity = PoolCapacity()) {
        self.init(balancer: .haproxy(socket: haproxy), backend: backend, server: server, capacity: capacity)
    }

    /// The membership of one unit: `%i` in the server's name replaced by the unit's instance.
    public func resolved(for unit: String) -> PoolMembership {
        guard server.contains("%i"), let at = unit.firstIndex(of: "@"), let dot = unit.lastIndex(of: "."), at < dot else { return self }
        var copy = self
        copy.server = server.replacing("%i", with: unit[unit.index(after: at)..<dot])
        return copy
    }
}

/// A health probe.
public struct Probe: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case http(url: String)
        case tcp(address: String)
        case exec(command: [String])
    }

    public var kind: Kind
    public var every: Duration
    public var timeout: Duration
    /// Consecutive failures before `unhealthy`.
    public var failures: Int
    /// Consecutive successes before healthy again.
    public var successes: Int
    /// HTTP: the body must contain this.
    public var expect: String?
    /// HTTP: an answer slower than this is a failure.
    public var latency: Duration?

    public init(kind: Kind, every: Duration, timeout: Duration, failures: Int, successes: Int, expect: String? = nil, latency: Duration? = nil) {
        self.kind = kind
        self.every = every
        self.timeout = timeout
        self.failures = failures
        self.successes = successes
        self.expect = expect
        self.latency = latency
    }
}

/// Heartbeats a target must send to medicd's socket.
public struct Heartbeat: Sendable, Equatable {
    public var every: Duration
    /// Intervals without a beat before `heartbeat-missed`.
    public var missed: Int

    public init(every: Duration, missed: Int) {
        self.every = every
        self.missed = missed
    }
}

/// "When this happens, do these steps; if that does not help, escalate."
public struct Rule: Sendable, Equatable {
    public var condition: Condition
    /// The text of the condition as written, for the audit log.
    public var text: String
    public var steps: [Step]
    public var escalation: [EscalationLevel]

    public init(condition: Condition, text: String, steps: [Step], escalation: [EscalationLevel] = []) {
        self.condition = condition
        self.text = text
        self.steps = steps
        self.escalation = escalation
    }
}

/// One rung of an escalation ladder.
public struct EscalationLevel: Sendable, Equatable {
    public enum After: Sendable, Equatable, Hashable, CustomStringConvertible {
        /// The plan failed (a step or a verification failed, or a guard stopped it).
        case failure
        /// The plan failed this many times in the window.
        case failures(Int, within: Duration)
        /// The target was restarted this many times in the window.
        case restarts(Int, within: Duration)

        public var description: String {
            switch self {
            case .failure: "failure"
            case .failures(let n, let w): "\(n) failures in \(DurationText.format(w))"
            case .restarts(let n, let w): "\(n) restarts in \(DurationText.format(w))"
            }
        }
    }

    public var after: After
    public var steps: [Step]

    public init(after: After, steps: [Step]) {
        self.after = after
        self.steps = steps
    }
}

/// The safety rails of a playbook. Every field has a default.
public struct Guards: Sendable, Equatable {
    /// At most `count` runs of a step kind per target in `window` (default: 3 restarts in 10m,
    /// 1 reboot in 6h, 6 execs in 1h).
    public var rates: [StepKind: RateLimit]
    /// Waits between successive attempts on one target: `initial`, doubling up to `maximum`.
    public var backoffInitial: Duration
    public var backoffMaximum: Duration
    /// Healthy this long, and back-off and counts are forgiven.
    public var resetAfter: Duration
    /// At least this long between the starts of two plans on one target.
    public var cooldown: Duration
    /// This many state changes in the window: the target is flapping; automatic action stops.
    public var flap: RateLimit
    /// Healthy this long after a remedy, and the incident closes.
    public var stabilise: Duration
    /// When a dependency is healthy again, its victims get this long to recover by themselves
    /// before they are restarted (nil: each victim's probe window, else its heartbeat window,
    /// else 2 s).
    public var settle: Duration?
    /// After escalating, try again this often rather than giving up for good.
    public var retryEvery: Duration
    /// More than this share of a playbook's targets triggering within the window holds the group.
    public var stormShare: Double
    public var stormWindow: Duration

    public init(
        rates: [StepKind: RateLimit] = [
            .restart: RateLimit(count: 3, window: .seconds(600)), .reboot: RateLimit(count: 1, window: .seconds(21_600)),
            .exec: RateLimit(count: 6, window: .seconds(3600)),
        ],
        backoffInitial: Duration = .seconds(1), backoffMaximum: Duration = .seconds(300), resetAfter: Duration = .seconds(600),
        cooldown: Duration = .zero, flap: RateLimit = RateLimit(count: 10, window: .seconds(300)),
        stabilise: Duration = .seconds(30), settle: Duration? = nil, retryEvery: Duration = .seconds(600),
        stormShare: Double = 0.3, stormWindow: Duration = .seconds(60)
    ) {
        self.rates = rates
        self.backoffInitial = backoffInitial
        self.backoffMaximum = backoffMaximum
        self.resetAfter = resetAfter
        self.cooldown = cooldown
        self.flap = flap
        self.stabilise = stabilise
        self.settle = settle
        self.retryEvery = retryEvery
        self.stormShare = stormShare
        self.stormWindow = stormWindow
    }
}

/// `N in DURATION`.
public struct RateLimit: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var count: Int
    public var window: Duration

    public init(count: Int, window: Duration) {
        self.count = count
        self.window = window
    }

    /// Parses `3 in 10m` (also `3 per 10m`).
    public init?(parsing text: String) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[1] == "in" || parts[1] == "per", let count = Int(parts[0]), count >= 0,
              let window = DurationText.parse(String(parts[2])), window > .zero
        else { return nil }
        self.init(count: count, window: window)
    }

    public var description: String { "\(count) in \(DurationText.format(window))" }
}

extension Playbook {
    /// Whether a rule of it is set off by an Alertmanager alert.
    public var hasAlertRule: Bool {
        rules.contains { rule in rule.condition.triggers.contains { if case .alert = $0 { true } else { false } } }
    }
}
