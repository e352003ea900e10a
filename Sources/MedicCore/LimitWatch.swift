import Synchronization

/// How one resource limit of one target is watched, for `medic status`: by an event of the
/// kernel's, by sampling, or both.
public struct LimitWatch: Sendable, Codable, Equatable {
    public var target: String
    /// The limit as the playbook writes it: `cpu.pressure > 50% for 30s`.
    public var limit: String
    /// `PSI trigger on …/cpu.pressure`, `sampled every 5s`, `sampled every 5s; at once when
    /// …/memory.events changes`, or why the unit is not watched yet.
    public var how: String

    public init(target: String, limit: String, how: String) {
        self.target = target
        self.limit = limit
        self.how = how
    }
}

/// The resource watcher's current account of how it watches each limit, read by the control
/// socket's status. A reload starts a new watcher before the old one has ended: each takes a
/// generation, and only the newest one's account counts.
public final class LimitWatchBoard: Sendable {
    private let state = Mutex<(generation: Int, watches: [String: [LimitWatch]])>((0, [:]))

    public init() {}

    /// Every limit, by target then limit.
    public var all: [LimitWatch] {
        state.withLock { $0.watches }.sorted { $0.key < $1.key }.flatMap { $0.value.sorted { $0.limit < $1.limit } }
    }

    /// Starts a new account (a watcher starts); returns its generation.
    public func begin() -> Int {
        state.withLock { state in
            state.generation += 1
            state.watches.removeAll()
            return state.generation
        }
    }

    /// Replaces the account of `target`'s limits, if `generation` is the newest.
    public func set(_ target: String, _ entries: [LimitWatch], generation: Int) {
        state.withLock { state in
            guard state.generation == generation else { return }
            state.watches[target] = entries
        }
    }

    /// Ends an account (its watcher ended), if it is the newest.
    public func end(_ generation: Int) {
        state.withLock { state in
            if state.generation == generation { state.watches.removeAll() }
        }
    }
}
