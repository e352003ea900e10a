/// The names of the audit facts (`AuditRecord.details`) that one module writes and another
/// reads: the engine's and the actions' records are read back by the audit store (guard
/// history, pool holds, incidents), the metrics, the CLI and the post-mortem report. One name,
/// defined once, so that a writer and its readers cannot drift apart.
public enum AuditFact {
    /// A step's result: `succeeded`, `failed`, `refused`, `dry-run`.
    public static let result = "result"
    /// How an incident closed: `recovered`, `recovered-by-itself`, `escalated`, `failed`, `dry-run`.
    public static let outcome = "outcome"
    /// `true` on the decision that an attempt failed (guard history counts it).
    public static let failure = "failure"
    /// The guard that stopped or held a step.
    public static let guardName = "guard"
    /// The rule's condition that opened an incident.
    public static let trigger = "trigger"
    /// The kind of an observation (`crashed`, `unhealthy`, …).
    public static let observed = "observed"
    /// `true` on a step intent that dry-run only recorded (nothing was done).
    public static let dryRun = "dry_run"
    /// A human's command (`pause`, `resume`, `run`, `unsilence`).
    public static let command = "command"
    /// `true` on a guard stop that paused the target (flapping).
    public static let paused = "paused"
    /// A pool step's HAProxy socket, server, and whether Medic holds the server out of service.
    public static let poolSocket = "pool_socket"
    public static let poolServer = "pool_server"
    public static let poolHeld = "pool_held"
    /// An incident's figures on close.
    public static let timeToDetectMs = "time_to_detect_ms"
    public static let timeToRecoverMs = "time_to_recover_ms"
    public static let stabilisedMs = "stabilised_ms"
    public static let healthyAt = "healthy_at"
}
