/// An audit fact (a key of `AuditRecord.details`) that one module writes and another reads: the
/// engine's and the actions' records are read back by the audit store (guard history, pool
/// holds, incidents), the metrics, the CLI and the post-mortem report. Each is defined once,
/// here, and read and written through its type (`details[.result]`), so that a writer and its
/// readers cannot drift apart. The names are stored: never rename one.
public struct AuditFact: Hashable, Sendable, CustomStringConvertible {
    /// The key as stored.
    public let name: String

    private init(_ name: String) { self.name = name }

    public var description: String { name }

    /// A step's result: `succeeded`, `failed`, `refused`, `dry-run`.
    public static let result = AuditFact("result")
    /// How an incident closed: `recovered`, `recovered-by-itself`, `escalated`, `failed`, `dry-run`.
    public static let outcome = AuditFact("outcome")
    /// `true` on the decision that an attempt failed (guard history counts it).
    public static let failure = AuditFact("failure")
    /// The guard that stopped or held a step.
    public static let guardName = AuditFact("guard")
    /// The rule's condition that opened an incident.
    public static let trigger = AuditFact("trigger")
    /// The kind of an observation (`crashed`, `unhealthy`, …).
    public static let observed = AuditFact("observed")
    /// `true` on a step intent that dry-run only recorded (nothing was done).
    public static let dryRun = AuditFact("dry_run")
    /// `true` on a step a runner's guard refused after its intent was written (capacity, a
    /// fleet budget): it never ran, so the guard history does not count its intent.
    public static let notRun = AuditFact("not_run")
    /// A human's command (`pause`, `resume`, `run`, `unsilence`).
    public static let command = AuditFact("command")
    /// `true` on a guard stop that paused the target (flapping).
    public static let paused = AuditFact("paused")
    /// A pool step's HAProxy socket, server, and whether Medic holds the server out of service.
    public static let poolSocket = AuditFact("pool_socket")
    public static let poolServer = AuditFact("pool_server")
    public static let poolHeld = AuditFact("pool_held")
    /// The revision of the etcd lock (or budget slot) under which a fleet step acted: a fencing
    /// token, on the observation that opened the incident and on the steps it ran.
    public static let fencingToken = AuditFact("fencing_token")
    /// The boot a medicd started in (on its start record), for telling a reboot apart.
    public static let boot = AuditFact("boot")
    /// An incident's figures on close.
    public static let timeToDetectMs = AuditFact("time_to_detect_ms")
    public static let timeToRecoverMs = AuditFact("time_to_recover_ms")
    public static let stabilisedMs = AuditFact("stabilised_ms")
    public static let healthyAt = AuditFact("healthy_at")
}

extension Dictionary where Key == String, Value == String {
    /// The value of a shared audit fact.
    public subscript(fact: AuditFact) -> String? {
        get { self[fact.name] }
        set { self[fact.name] = newValue }
    }
}
