/// What the engine has counted since medicd started.
public struct EngineCounters: Sendable, Equatable, Codable {
    public var observations = 0
    public var incidentsOpened = 0
    public var recovered = 0
    public var failed = 0
    public var restarts = 0
    public var guardStops = 0
    public var escalations = 0

    public init() {}
}

/// The engine's state as `medic status` shows it.
public struct EngineReport: Sendable, Codable, Equatable {
    public struct Target: Sendable, Codable, Equatable {
        public var name: String
        public var healthy: Bool?
        public var paused: Bool
        public var incidents: [Int64]

        public init(name: String, healthy: Bool?, paused: Bool, incidents: [Int64]) {
            self.name = name
            self.healthy = healthy
            self.paused = paused
            self.incidents = incidents
        }
    }

    public struct OpenIncident: Sendable, Codable, Equatable {
        public var id: Int64
        public var target: String
        public var playbook: String
        public var trigger: String
        /// What it is doing: `running step 2`, `backing off until …`, `paused for a human`.
        public var phase: String
        public var attempt: Int
        public var opened: String

        public init(id: Int64, target: String, playbook: String, trigger: String, phase: String, attempt: Int, opened: String) {
            self.id = id
            self.target = target
            self.playbook = playbook
            self.trigger = trigger
            self.phase = phase
            self.attempt = attempt
            self.opened = opened
        }
    }

    public struct SilenceInForce: Sendable, Codable, Equatable {
        public var pattern: String
        public var until: String
        public var reason: String
        public var author: String

        public init(pattern: String, until: String, reason: String, author: String) {
            self.pattern = pattern
            self.until = until
            self.reason = reason
            self.author = author
        }
    }

    public var targets: [Target]
    public var incidents: [OpenIncident]
    public var silences: [SilenceInForce]
    public var pausedAll: Bool
    public var dryRun: Bool
    public var playbooks: [String]
    public var counters: EngineCounters

    public init(
        targets: [Target], incidents: [OpenIncident], silences: [SilenceInForce], pausedAll: Bool, dryRun: Bool, playbooks: [String], counters: EngineCounters
    ) {
        self.targets = targets
        self.incidents = incidents
        self.silences = silences
        self.pausedAll = pausedAll
        self.dryRun = dryRun
        self.playbooks = playbooks
        self.counters = counters
    }
}
