import Synchronization

/// Which targets a step has just brought up again (a restart or start that succeeded), for the
/// detectors whose verdicts spoke of the process that was replaced: a probe that was passing
/// must pass again, against the new process, before the target is healthy. The actions post,
/// the detectors take.
public final class RestartNotices: Sendable {
    private let pending = Mutex<Set<String>>([])

    public init() {}

    /// `target` was brought up again.
    public func post(_ target: String) {
        pending.withLock { _ = $0.insert(target) }
    }

    /// Whether `target` was brought up again since the last call for it.
    public func take(_ target: String) -> Bool {
        pending.withLock { $0.remove(target) != nil }
    }
}
