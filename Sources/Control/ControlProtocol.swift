import MedicCore

/// One request on medicd's control socket: a JSON object on one line.
public struct ControlRequest: Sendable, Codable, Equatable {
    public enum Command: String, Sendable, Codable, CaseIterable {
        case status, silence, unsilence, pause, resume, run, reload, fleet
        /// Frees the fleet budget slots a host holds (`target`: the host).
        case fleetRelease = "fleet-release"

        /// Whether the command changes anything (then only root or the admin group may send it).
        public var changes: Bool { self != .status && self != .fleet }
    }

    public var command: Command
    /// A unit, a glob, or `*`.
    public var target: String?
    public var playbook: String?
    /// For silence: how long (`1h`), from when (`startIn`), and why.
    public var duration: String?
    public var startIn: String?
    public var reason: String?

    public init(command: Command, target: String? = nil, playbook: String? = nil, duration: String? = nil, startIn: String? = nil, reason: String? = nil) {
        self.command = command
        self.target = target
        self.playbook = playbook
        self.duration = duration
        self.startIn = startIn
        self.reason = reason
    }
}

/// medicd's answer: a JSON object on one line.
public struct ControlResponse: Sendable, Codable, Equatable {
    public var ok: Bool
    /// What was done, for people.
    public var message: String?
    /// Why it was not done.
    public var error: String?
    /// For `status`.
    public var status: DaemonStatus?
    /// For `fleet`.
    public var fleet: FleetStatus?

    public init(ok: Bool, message: String? = nil, error: String? = nil, status: DaemonStatus? = nil, fleet: FleetStatus? = nil) {
        self.ok = ok
        self.message = message
        self.error = error
        self.status = status
        self.fleet = fleet
    }

    public static func failure(_ error: String) -> ControlResponse { ControlResponse(ok: false, error: error) }
}

/// What `medic status` shows: the engine's state and the daemon's own.
public struct DaemonStatus: Sendable, Codable, Equatable {
    public var pid: Int32
    public var startedAt: String
    public var lastReload: String?
    /// Why the audit log cannot be written, while it cannot.
    public var auditProblem: String?
    public var engine: EngineReport
    /// How each resource limit is watched: by the kernel's events, or sampled.
    public var limits: [LimitWatch]?

    public init(pid: Int32, startedAt: String, lastReload: String?, auditProblem: String?, engine: EngineReport, limits: [LimitWatch]? = nil) {
        self.pid = pid
        self.startedAt = startedAt
        self.lastReload = lastReload
        self.auditProblem = auditProblem
        self.engine = engine
        self.limits = limits
    }
}

/// What `medic fleet` shows: this host's membership, and every other host as this one sees it.
public struct FleetStatus: Sendable, Codable, Equatable {
    /// One host of the fleet.
    public struct Host: Sendable, Codable, Equatable {
        public var name: String
        /// `up`, `lost` (being corroborated), `down`, `isolated`, `returning`.
        public var state: String
        public var address: String
        /// Its pool servers, `backend/server at SOCKET`.
        public var servers: [String]
        /// When it registered under its current lease (RFC 3339).
        public var registeredSince: String?
        /// The peer that holds its lock (acts on it), if any.
        public var actingHost: String?

        public init(name: String, state: String, address: String, servers: [String], registeredSince: String?, actingHost: String?) {
            self.name = name
            self.state = state
            self.address = address
            self.servers = servers
            self.registeredSince = registeredSince
            self.actingHost = actingHost
        }
    }

    public var fleet: String
    /// This host's name in the fleet.
    public var host: String
    /// This host's membership: `registered`, `etcd unreachable since …`, `not yet registered`.
    public var membership: String
    public var hosts: [Host]
    /// Every budget slot held, by whom.
    public var budgets: [Slot]

    /// One slot of a fleet budget, and its holder.
    public struct Slot: Sendable, Codable, Equatable {
        public var budget: String
        public var slot: Int
        public var host: String
        public var incident: Int64
        public var since: String

        public init(budget: String, slot: Int, host: String, incident: Int64, since: String) {
            self.budget = budget
            self.slot = slot
            self.host = host
            self.incident = incident
            self.since = since
        }
    }

    public init(fleet: String, host: String, membership: String, hosts: [Host], budgets: [Slot]) {
        self.fleet = fleet
        self.host = host
        self.membership = membership
        self.hosts = hosts
        self.budgets = budgets
    }
}
