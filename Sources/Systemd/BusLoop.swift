import CSystemd
import Glibc

/// The state confined to the bus thread: the connection, the signal handlers, and the waiters
/// that signals or deadlines resolve. Only the bus thread touches it.
final class BusLoop: @unchecked Sendable {
    /// What a waiter waits for.
    enum WaitKind {
        /// JobRemoved for this job object path; resolves with the job's result.
        case job(path: String)
        /// The unit's ActiveState satisfying the predicate; resolves with that state.
        case activeState(unit: String, until: @Sendable (String) -> Bool)
    }

    /// How a wait ended.
    enum WaitOutcome: Sendable {
        case resolved(String)
        case timedOut
        case failed(SystemdError)
    }

    private struct Waiter {
        var kind: WaitKind
        var deadline: UInt64
        var resume: (WaitOutcome) -> Void
    }

    let address: BusAddress
    private let events: AsyncStream<BusEvent>.Continuation
    private(set) var connection: BusConnection?
    private var waiters: [UInt64: Waiter] = [:]
    /// Jobs systemd queued beside one of ours (a restart propagated to what Requires= the unit):
    /// ours too, though nobody waits for them.
    private var claimedJobs: Set<String> = []
    private var nextWaiterID: UInt64 = 0
    private var reconnectAt: UInt64 = 0
    private var reconnectDelay: UInt64 = minimumReconnectDelay

    private static let minimumReconnectDelay: UInt64 = 20_000
    private static let maximumReconnectDelay: UInt64 = 1_000_000

    init(address: BusAddress, events: AsyncStream<BusEvent>.Continuation) {
        self.address = address
        self.events = events
    }

    /// A loop with no connection, for work submitted after the bus was closed.
    static var closed: BusLoop {
        BusLoop(address: .system, events: AsyncStream.makeStream(of: BusEvent.self).continuation)
    }

    /// The open connection, or ECANCELED/ENOTCONN when there is none.
    func requireConnection() throws(SystemdError) -> BusConnection {
        if let connection { return connection }
        throw SystemdError(call: "bus connection to \(address)", errno: ENOTCONN)
    }

    // MARK: Connecting

    /// Opens the connection, installs the signal handlers and subscribes to systemd's signals.
    func connect() throws(SystemdError) {
        let connection = try BusConnection(address: address)
        // The loop outlives its connections, so the handlers may hold it unretained.
        let me = Unmanaged.passUnretained(self).toOpaque()
        let handler: sd_bus_message_handler_t = { message, userdata, _ in
            guard let message, let userdata else { return 0 }
            Unmanaged<BusLoop>.fromOpaque(userdata).takeUnretainedValue().dispatch(BusMessage(borrowing: message))
            return 0
        }
        try connection.matchSignal(
            sender: SystemdManager.destination, path: SystemdManager.managerPath,
            interface: SystemdManager.managerInterface, member: "JobRemoved", handler: handler, userdata: me)
        try connection.matchSignal(
            sender: SystemdManager.destination, path: SystemdManager.managerPath,
            interface: SystemdManager.managerInterface, member: "JobNew", handler: handler, userdata: me)
        try connection.matchSignal(
            sender: SystemdManager.destination, path: nil,
            interface: SystemdManager.propertiesInterface, member: "PropertiesChanged", handler: handler, userdata: me)
        _ = try connection.call(
            destination: SystemdManager.destination, path: SystemdManager.managerPath,
            interface: SystemdManager.managerInterface, member: "Subscribe")
        self.connection = connection
        reconnectDelay = Self.minimumReconnectDelay
    }

    private func disconnected(_ error: SystemdError) {
        connection = nil
        failAllWaiters(SystemdError(call: error.call, errno: ENOTCONN))
        events.yield(.disconnected(error))
        reconnectAt = monotonicMicroseconds() + reconnectDelay
    }

    private func reconnectIfDue(now: UInt64) {
        guard connection == nil, now >= reconnectAt else { return }
        do {
            try connect()
            events.yield(.connected)
        } catch {
            reconnectDelay = min(reconnectDelay * 2, Self.maximumReconnectDelay)
            reconnectAt = now + reconnectDelay
        }
    }

    // MARK: The loop

    /// Runs until the queue is stopped: work, bus messages, deadlines, reconnection.
    func run(queue: WorkQueue) {
        while !queue.isStopped {
            for work in queue.take() { work(self) }
            let now = monotonicMicroseconds()
            reconnectIfDue(now: now)
            if let connection {
                do {
                    if try connection.process() { continue }
                    if !connection.isOpen { throw SystemdError(call: "sd_bus_process", errno: ECONNRESET) }
                } catch let error as SystemdError {
                    disconnected(error)
                    continue
                } catch {
                    continue
                }
            }
            expireWaiters(now: now)
            poll(queue: queue, now: now)
        }
        connection = nil
        failAllWaiters(SystemdError(call: "bus closed", errno: ECANCELED))
        for work in queue.take() { work(nil) }
        events.finish()
    }

    private func poll(queue: WorkQueue, now: UInt64) {
        var deadline = waiters.values.map(\.deadline).min() ?? UInt64.max
        var fds = [pollfd(fd: queue.wakeFD, events: Int16(POLLIN), revents: 0)]
        if let connection {
            fds.append(pollfd(fd: connection.fd, events: Int16(truncatingIfNeeded: connection.events), revents: 0))
            if let busDeadline = connection.timeoutUSec { deadline = min(deadline, busDeadline) }
        } else {
            deadline = min(deadline, reconnectAt)
        }
        let timeoutMS: Int32
        if deadline == UInt64.max {
            timeoutMS = -1
        } else if deadline <= now {
            timeoutMS = 0
        } else {
            timeoutMS = Int32(min((deadline - now + 999) / 1000, UInt64(Int32.max)))
        }
        _ = Glibc.poll(&fds, nfds_t(fds.count), timeoutMS)
        if fds[0].revents != 0 { queue.drainWakeups() }
    }

    // MARK: Waiters

    /// Registers a waiter; `resume` is called exactly once, on the bus thread.
    func addWaiter(_ kind: WaitKind, timeoutUSec: UInt64, resume: @escaping (WaitOutcome) -> Void) {
        nextWaiterID += 1
        waiters[nextWaiterID] = Waiter(kind: kind, deadline: monotonicMicroseconds() + timeoutUSec, resume: resume)
    }

    private func resolveWaiters(where matches: (WaitKind) -> String?) {
        for (id, waiter) in waiters {
            if let value = matches(waiter.kind) {
                waiters[id] = nil
                waiter.resume(.resolved(value))
            }
        }
    }

    private func expireWaiters(now: UInt64) {
        for (id, waiter) in waiters where waiter.deadline <= now {
            waiters[id] = nil
            waiter.resume(.timedOut)
        }
    }

    private func failAllWaiters(_ error: SystemdError) {
        let all = waiters
        waiters.removeAll()
        for waiter in all.values { waiter.resume(.failed(error)) }
    }

    // MARK: Signals

    private func dispatch(_ message: BusMessage) {
        switch message.member {
        case "JobNew": jobNew(message)
        case "JobRemoved": jobRemoved(message)
        case "PropertiesChanged": propertiesChanged(message)
        default: break
        }
    }

    /// Who asked for a job tells an operator's stop from a crash. Our own jobs' waiters are
    /// registered before any signal is dispatched. (The job's type cannot be read here: systemd
    /// does not export a job object yet when it announces it.)
    private func jobNew(_ message: BusMessage) {
        guard
            let id = try? message.readBasic("u", as: UInt32.self),
            let job = try? message.readObjectPath(),
            let unit = try? message.readString()
        else { return }
        let ours = claimedJobs.contains(job) || waiters.values.contains { if case .job(let path) = $0.kind { path == job } else { false } }
        events.yield(.jobNew(id: id, job: job, unit: unit, ours: ours))
    }

    /// Takes the jobs systemd queued beside one of ours as ours (their JobNew signals are
    /// dispatched after the reply that named them).
    func claim(jobs: [String]) {
        claimedJobs.formUnion(jobs)
    }

    private func jobRemoved(_ message: BusMessage) {
        guard
            let id = try? message.readBasic("u", as: UInt32.self),
            let job = try? message.readObjectPath(),
            let unit = try? message.readString(),
            let result = try? message.readString()
        else { return }
        claimedJobs.remove(job)
        events.yield(.jobRemoved(id: id, job: job, unit: unit, result: result))
        resolveWaiters { kind in
            if case .job(let path) = kind, path == job { return result }
            return nil
        }
    }

    private func propertiesChanged(_ message: BusMessage) {
        guard let path = message.path, let unit = UnitPath.unitName(fromPath: path) else { return }
        guard
            let interface = try? message.readString(),
            interface == SystemdManager.unitInterface || interface == SystemdManager.serviceInterface,
            let properties = try? message.readPropertyDictionary(only: UnitState.propertyNames)
        else { return }
        let state = UnitState(properties: properties)
        if state.isEmpty { return }
        events.yield(.unitChanged(unit: unit, state: state))
        if let active = state.activeState {
            resolveWaiters { kind in
                if case .activeState(let waitedUnit, let until) = kind, waitedUnit == unit, until(active) {
                    return active
                }
                return nil
            }
        }
    }
}

/// CLOCK_MONOTONIC in microseconds, the clock sd-bus uses for its timeouts.
func monotonicMicroseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
}
