/// The kinds of step a plan can take.
public enum StepKind: String, Sendable, Equatable, Hashable, CaseIterable, Codable {
    case restart, start, stop, reload, kill, verify, wait, collect, pool, cache, reboot, exec, notify

    /// Steps that take something down or away: held by storm and dependency guards.
    public var isDestructive: Bool {
        switch self {
        case .restart, .stop, .kill, .reboot, .exec, .pool, .cache: true
        case .start, .reload, .verify, .wait, .collect, .notify: false
        }
    }

    /// Steps that act on the target itself and may fix it (as opposed to telling people,
    /// keeping evidence, moving traffic or waiting).
    public var isRemedy: Bool {
        switch self {
        case .restart, .start, .stop, .reload, .kill, .reboot, .exec, .cache: true
        case .verify, .wait, .collect, .pool, .notify: false
        }
    }

    /// Each kind's timeout when the playbook does not give one.
    public var defaultTimeout: Duration {
        switch self {
        case .restart, .start, .stop, .reload: .seconds(30)
        case .kill: .seconds(10)
        case .verify: .seconds(30)
        case .wait: .seconds(3600)
        case .collect, .pool, .cache, .exec, .notify: .seconds(30)
        case .reboot: .seconds(300)
        }
    }
}

/// One step of a plan, with its options and timeout.
public struct Step: Sendable, Equatable, CustomStringConvertible {
    public enum Action: Sendable, Equatable {
        case restart, start, stop, reload
        /// Send a signal to the unit's main process.
        case kill(signal: Int32)
        /// The target must be healthy within `within`, then stay healthy for `stable`.
        case verify(within: Duration, stable: Duration)
        case wait(Duration)
        /// Keep the last N lines of the unit's journal as evidence.
        case collect(journalLines: Int)
        /// Move the target's servers to a pool state; taking them out (drain, maint) only with
        /// a slot of `budget`, in a fleet.
        case pool(PoolState, budget: FleetBudget? = nil)
        /// Ban what the Varnish in front of the target has cached that matches a ban expression
        /// (`req.url ~ "^/api/"`): a faulty cached answer stops being served.
        case cache(ban: String)
        /// Reboot the host, at most `limit` times in its window, and (in a fleet) only with a
        /// slot of `budget`.
        case reboot(limit: RateLimit, budget: FleetBudget?)
        /// Run the site's own program (an argument array, never a shell string).
        case exec(ExecCommand)
        /// Tell a receiver of the playbook's (or the journal), beside the plan: never holds it.
        case notify(recipient: String, message: String?)
    }

    public var action: Action
    public var timeout: Duration

    public init(_ action: Action, timeout: Duration? = nil) {
        self.action = action
        self.timeout = timeout ?? Self.kind(of: action).defaultTimeout
    }

    public var kind: StepKind { Self.kind(of: action) }

    /// Whether this step takes something down or away (returning a server to its pool does not).
    public var isDestructive: Bool {
        if case .pool(.ready, _) = action { return false }
        return kind.isDestructive
    }
    public var name: String { kind.rawValue }

    private static func kind(of action: Action) -> StepKind {
        switch action {
        case .restart: .restart
        case .start: .start
        case .stop: .stop
        case .reload: .reload
        case .kill: .kill
        case .verify: .verify
        case .wait: .wait
        case .collect: .collect
        case .pool: .pool
        case .cache: .cache
        case .reboot: .reboot
        case .exec: .exec
        case .notify: .notify
        }
    }

    public var description: String {
        switch action {
        case .restart, .start, .stop, .reload: "\(name) (timeout \(DurationText.format(timeout)))"
        case .kill(let signal): "kill with signal \(signal)"
        case .verify(let within, let stable):
            "verify (healthy within \(DurationText.format(within))" + (stable > .zero ? ", for \(DurationText.format(stable)))" : ")")
        case .wait(let d): "wait \(DurationText.format(d))"
        case .collect(let lines): "collect the last \(lines) journal lines"
        case .pool(let state, let budget): "pool \(state.rawValue)" + (budget.map { " (fleet budget \($0.name): \($0.slots) at once)" } ?? "")
        case .cache(let ban): "cache ban \(ban)"
        case .reboot(let limit, let budget):
            "reboot (at most \(limit)" + (budget.map { ", fleet budget \($0.name): \($0.slots) at once" } ?? "") + ")"
        case .exec(let command): "exec \(command.arguments.joined(separator: " "))"
        case .notify(let recipient, _): "notify \(recipient)"
        }
    }
}

/// A server's state in its load balancer's pool.
public enum PoolState: String, Sendable, Equatable, CaseIterable {
    case drain, maint, ready
}
