import Synchronization

/// Runs `operation` in a task of its own and waits for it at most `limit`. Past that, its task
/// is cancelled and nil is returned at once, whether or not the operation heeds the
/// cancellation: for calls that must end by a deadline even if what they wait on never answers
/// (a server that accepted the connection and went quiet). Cancelling the caller ends the wait
/// the same way.
public func within<Value: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async -> Value) async -> Value? {
    let race = Race<Value>()
    return await withTaskCancellationHandler {
        await withCheckedContinuation { continuation in
            race.start(continuation, limit: limit, operation)
        }
    } onCancel: {
        race.finish(nil)
    }
}

/// The one answer of `within`: the operation's value or the deadline's nil, whichever comes first.
private final class Race<Value: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Value?, Never>?
        var tasks: [Task<Void, Never>] = []
        var finished = false
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<Value?, Never>, limit: Duration, _ operation: @escaping @Sendable () async -> Value) {
        let cancelledAlready = state.withLock { state in
            if !state.finished { state.continuation = continuation }
            return state.finished
        }
        if cancelledAlready { return continuation.resume(returning: nil) }
        let work = Task { self.finish(await operation()) }
        let timer = Task {
            try? await Task.sleep(for: limit)
            self.finish(nil)
        }
        let late = state.withLock { state in
            state.tasks = [work, timer]
            return state.finished
        }
        if late { work.cancel(); timer.cancel() }
    }

    /// Resumes the waiter with `value` unless it was resumed already; cancels what is left.
    func finish(_ value: Value?) {
        let (continuation, tasks) = state.withLock { state in
            defer { state.continuation = nil; state.finished = true }
            return state.finished ? (nil, []) : (state.continuation, state.tasks)
        }
        for task in tasks { task.cancel() }
        continuation?.resume(returning: value)
    }
}
