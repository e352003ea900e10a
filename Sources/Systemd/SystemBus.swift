import CSystemd
import Foundation
import Glibc
import Synchronization

/// The system bus, confined to one thread of its own.
///
/// Every sd-bus call happens on that thread: it polls the connection's file descriptor and an
/// eventfd that wakes it for work submitted from other threads. systemd's unit and job signals
/// arrive as `events`. When the connection drops (dbus restarted, the host rebooted) it yields
/// `.disconnected`, reconnects with back-off, subscribes again and yields `.connected`, so that
/// consumers re-read the state they may have missed.
public final class SystemBus: Sendable {
    /// Everything systemd says about units and jobs, in the order it said it. One consumer.
    public let events: AsyncStream<BusEvent>
    /// Where this bus connects.
    public let address: BusAddress

    private let queue: WorkQueue
    private let loop: BusLoop

    /// Connects to the bus (throwing at once if it cannot be reached), subscribes to systemd's
    /// signals and starts the bus thread.
    public init(address: BusAddress = .system) throws(SystemdError) {
        self.address = address
        let (events, continuation) = AsyncStream.makeStream(of: BusEvent.self, bufferingPolicy: .unbounded)
        self.events = events
        queue = try WorkQueue()
        loop = BusLoop(address: address, events: continuation)
        try loop.connect()
        let loop = self.loop, queue = self.queue
        let thread = Thread { loop.run(queue: queue) }
        thread.name = "medic-bus"
        thread.start()
    }

    /// Stops the bus thread, closes the connection and ends `events`. Operations still pending
    /// fail with ECANCELED.
    public func close() { queue.stop() }

    deinit { queue.stop() }

    /// Runs `body` on the bus thread and returns its result.
    func perform<T: Sendable>(_ body: @escaping @Sendable (BusLoop) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (result: CheckedContinuation<T, Error>) in
            queue.submit { loop in result.resume(with: Result { try body(loop) }) }
        }
    }

    /// Runs `body` on the bus thread; `body` calls its completion exactly once, possibly later
    /// (from a waiter that a signal or a deadline resolves).
    func performDeferred<T: Sendable>(
        _ body: @escaping @Sendable (BusLoop, @escaping @Sendable (Result<T, Error>) -> Void) -> Void
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (result: CheckedContinuation<T, Error>) in
            queue.submit { loop in body(loop) { result.resume(with: $0) } }
        }
    }
}

/// Work handed to the bus thread, and the eventfd that wakes it.
final class WorkQueue: Sendable {
    typealias Work = @Sendable (BusLoop?) -> Void
    private struct State {
        var work: [Work] = []
        var stopped = false
    }
    private let state = Mutex(State())
    let wakeFD: Int32

    init() throws(SystemdError) {
        let fd = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        if fd < 0 { throw SystemdError(call: "eventfd", errno: errno) }
        wakeFD = fd
    }

    deinit { Glibc.close(wakeFD) }

    /// Queues work for the bus thread; once stopped, runs it at once with no loop.
    func submit(_ work: @escaping @Sendable (BusLoop) -> Void) {
        let wrapped: Work = { loop in
            if let loop { work(loop) } else { work(BusLoop.closed) }
        }
        let accepted = state.withLock { state in
            if state.stopped { return false }
            state.work.append(wrapped)
            return true
        }
        if accepted { wake() } else { wrapped(nil) }
    }

    var isStopped: Bool { state.withLock { $0.stopped } }

    func stop() {
        state.withLock { $0.stopped = true }
        wake()
    }

    /// Takes the queued work; after `stop`, also marks the queue closed for good.
    func take() -> [Work] {
        state.withLock { state in
            defer { state.work.removeAll() }
            return state.work
        }
    }

    func drainWakeups() {
        var value: UInt64 = 0
        _ = Glibc.read(wakeFD, &value, 8)
    }

    private func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }
}
