/// One entry of the audit log, as the engine and the daemon hand it over. The store adds the
/// sequence number, host and boot.
public struct AuditRecord: Sendable, Equatable {
    /// What kind of entry this is. The raw values are stored and never renumbered or renamed.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// Something a detector saw.
        case observation
        /// An incident was opened for a target and trigger.
        case incidentOpened = "incident-opened"
        /// An incident ended (recovered, or failed).
        case incidentClosed = "incident-closed"
        /// A choice the engine made (joining an incident, refusing a step, …).
        case decision
        /// A step is about to run: written before it runs.
        case stepIntent = "step-intent"
        /// A step ran: written after it ran.
        case stepResult = "step-result"
        /// A guard stopped or held a step (rate limit, back-off, silence, storm, dependency…).
        case guardStopped = "guard-stopped"
        /// The plan failed and the engine escalated (a ladder level, or a human).
        case escalation
        /// A silence or maintenance window was set or lifted.
        case silence
        /// A person did something through the CLI.
        case humanCommand = "human-command"
        /// A playbook was loaded.
        case playbookLoaded = "playbook-loaded"
        /// A playbook was refused as invalid.
        case playbookRefused = "playbook-refused"
        /// The daemon started, stopped or changed state.
        case daemon
    }

    public var kind: Kind
    public var time: Timestamp
    /// The unit concerned, if any.
    public var target: String?
    /// The incident it belongs to (incidents are numbered from 1, in the order they open).
    public var incident: Int64?
    /// The playbook that acted, and its content hash.
    public var playbook: String?
    public var playbookHash: String?
    /// The step concerned, e.g. `restart`.
    public var step: String?
    /// A one-line human summary.
    public var message: String
    /// Facts, as string pairs (stored as a JSON object).
    public var details: [String: String]
    /// Who did it: `medicd`, or a person through the CLI (`uid 1000 (alice)`).
    public var actor: String

    public init(
        kind: Kind, time: Timestamp = .now(), target: String? = nil, incident: Int64? = nil,
        playbook: String? = nil, playbookHash: String? = nil, step: String? = nil,
        message: String, details: [String: String] = [:], actor: String = "medicd"
    ) {
        self.kind = kind
        self.time = time
        self.target = target
        self.incident = incident
        self.playbook = playbook
        self.playbookHash = playbookHash
        self.step = step
        self.message = message
        self.details = details
        self.actor = actor
    }
}

/// Where records go: the engine and the daemon write through this; the store implements it.
public protocol AuditSink: Sendable {
    /// Appends records durably, in order, in one transaction; returns their sequence numbers.
    /// Throws if they could not be made durable.
    func append(_ records: [AuditRecord]) async throws -> [Int64]
}

extension AuditSink {
    /// Appends one record durably and returns its sequence number.
    @discardableResult
    public func append(_ record: AuditRecord) async throws -> Int64 {
        try await append([record])[0]
    }
}
