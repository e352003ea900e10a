import Foundation

/// A thread of its own for calls that can wait: `sendmsg` to journald or to systemd's notify
/// socket blocks while the receiver's queue is full (a busy journald, a PID 1 that is not
/// reading), and no thread of Swift concurrency may ever wait like that. Calls run in order.
/// At most `capacity` posted calls wait; past that the oldest waiting is dropped. A call posted
/// with a `key` replaces the one with the same key still waiting (only the latest `STATUS=`
/// matters), keeping its place.
public final class BlockingCallThread: @unchecked Sendable {
    private struct Call {
        var key: String?
        /// Awaited calls are never dropped: someone waits for their result.
        var awaited: Bool
        var run: @Sendable () -> Void
    }

    private let condition = NSCondition()
    private var pending: [Call] = []
    private let capacity: Int

    public init(name: String, capacity: Int) {
        self.capacity = capacity
        let thread = Thread { [self] in
            while true {
                condition.lock()
                while pending.isEmpty { condition.wait() }
                let call = pending.removeFirst()
                condition.unlock()
                call.run()
            }
        }
        thread.name = name
        thread.start()
    }

    /// Runs `call` on the thread, later; returns at once.
    public func post(key: String? = nil, _ call: @escaping @Sendable () -> Void) {
        enqueue(Call(key: key, awaited: false, run: call))
    }

    /// Runs `call` on the thread and returns its result, suspending (not blocking) meanwhile.
    public func perform<T: Sendable>(_ call: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            enqueue(Call(key: nil, awaited: true, run: { continuation.resume(returning: call()) }))
        }
    }

    private func enqueue(_ call: Call) {
        condition.lock()
        defer {
            condition.signal()
            condition.unlock()
        }
        if let key = call.key, let index = pending.firstIndex(where: { $0.key == key }) {
            pending[index] = call
            return
        }
        if pending.count >= capacity, let oldest = pending.firstIndex(where: { !$0.awaited }) {
            pending.remove(at: oldest)
        }
        pending.append(call)
    }
}

/// Runs one call that can wait (a child process, a socket with a timeout) on a thread of its
/// own and suspends until it returns: never on libdispatch's global queues, whose few threads
/// on Linux are also those that run Swift concurrency.
public func onThreadOfItsOwn<T: Sendable>(_ name: String, _ call: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: call()) }
        thread.name = name
        thread.start()
    }
}
