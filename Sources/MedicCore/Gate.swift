import Synchronization

/// Opens once; whoever waits before then waits, whoever comes after goes straight through
/// (medicd's start-up done, say: work that can wait for it leaves the bus to the start-up).
public final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    public init() {}

    /// Lets every waiter through, now and from now on.
    public func open() {
        let waiting = state.withLock { state in
            state.open = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Whether the gate is open now.
    public var isOpen: Bool { state.withLock { $0.open } }

    /// Returns once the gate is open.
    public func wait() async {
        await withCheckedContinuation { continuation in
            let through = state.withLock { state in
                if !state.open { state.waiting.append(continuation) }
                return state.open
            }
            if through { continuation.resume() }
        }
    }
}
