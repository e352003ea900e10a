import CLinux
import Glibc
import Synchronization

/// Where the kernel can say that a limit may have been crossed, medicd waits for it instead of
/// looking every round:
/// - a PSI trigger on a pressure file (`some 200000 2000000` written to a cgroup's
///   `cpu.pressure`: POLLPRI as soon as its tasks stalled 200 ms within 2 s);
/// - a file that changes (inotify), such as a cgroup's `memory.events` when it hits its
///   `memory.high` or `memory.max`.
/// One thread of its own waits on all of them with epoll, so nothing here blocks the threads of
/// Swift concurrency; each wake-up names the key (a unit, or the host) it was armed for. Its
/// owner calls `close()` when done: the thread holds it until then.
public final class LimitEvents: Sendable {
    private struct Armed {
        var key: String
        var path: String
    }

    private struct State {
        /// PSI triggers by descriptor; inotify watches by watch descriptor.
        var triggers: [Int32: Armed] = [:]
        var watches: [Int32: Armed] = [:]
        /// How many triggers and watches each key has.
        var keys: [String: Int] = [:]
        var closed = false
    }

    private let state = Mutex(State())
    private let epoll: Int32
    private let inotify: Int32
    /// Written to end the thread.
    private let stop: Int32
    private let thread = Mutex<pthread_t?>(nil)

    /// `wake` is called on the events' thread with the key of each event (at most once per
    /// event; several events of one key may come at once).
    public init(wake: @escaping @Sendable (String) -> Void) {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        inotify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        stop = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        for descriptor in [inotify, stop] where descriptor >= 0 { add(descriptor, events: UInt32(EPOLLIN.rawValue)) }
        let loop = EventLoop(events: self, wake: wake)
        let box = Unmanaged.passRetained(loop).toOpaque()
        var id = pthread_t()
        if pthread_create(&id, nil, { argument in
            let loop = Unmanaged<EventLoop>.fromOpaque(argument!).takeRetainedValue()
            loop.run()
            return nil
        }, box) == 0 {
            thread.withLock { $0 = id }
        } else {
            Unmanaged<EventLoop>.fromOpaque(box).release()
        }
    }

    /// Arms a PSI trigger: `key` is woken whenever tasks stalled more than `share` of a
    /// `window` (the kernel takes 500 ms to 10 s). nil once armed, else why it could not be
    /// (no such file, a kernel without PSI, too many triggers).
    public func armPressure(_ path: String, share: Double, window: Duration = .seconds(2), for key: String) -> String? {
        let windowMicros = window.components.seconds * 1_000_000 + window.components.attoseconds / 1_000_000_000_000
        let stall = max(1, Int64((Double(windowMicros) * min(max(share, 0), 1)).rounded()))
        let descriptor = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { return "cannot open \(path): \(String(cString: strerror(errno)))" }
        // The trigger is one write, NUL included (the kernel's own example writes it so).
        let trigger = "some \(stall) \(windowMicros)"
        let written = trigger.withCString { write(descriptor, $0, strlen($0) + 1) }
        guard written > 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(descriptor)
            return "the kernel refused the trigger '\(trigger)' on \(path): \(reason)"
        }
        let armed = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.triggers[descriptor] = Armed(key: key, path: path)
            state.keys[key, default: 0] += 1
            return true
        }
        guard armed else {
            Glibc.close(descriptor)
            return "closed"
        }
        guard add(descriptor, events: UInt32(EPOLLPRI.rawValue)) else {
            disarm(key)
            return "cannot wait for \(path)"
        }
        return nil
    }

    /// Wakes `key` whenever `path` changes. nil once watched, else why it cannot be.
    public func watchChanges(_ path: String, for key: String) -> String? {
        guard inotify >= 0 else { return "inotify is not available" }
        let watch = inotify_add_watch(inotify, path, UInt32(IN_MODIFY | IN_DELETE_SELF))
        guard watch >= 0 else { return "cannot watch \(path): \(String(cString: strerror(errno)))" }
        state.withLock { state in
            state.watches[watch] = Armed(key: key, path: path)
            state.keys[key, default: 0] += 1
        }
        return nil
    }

    /// Disarms everything armed for `key` (its cgroup changed, or it is no longer watched).
    public func disarm(_ key: String) {
        let (triggers, watches) = state.withLock { state in
            let triggers = state.triggers.filter { $0.value.key == key }.map(\.key)
            let watches = state.watches.filter { $0.value.key == key }.map(\.key)
            for descriptor in triggers { state.triggers[descriptor] = nil }
            for watch in watches { state.watches[watch] = nil }
            state.keys[key] = nil
            return (triggers, watches)
        }
        for descriptor in triggers {
            epoll_ctl(epoll, EPOLL_CTL_DEL, descriptor, nil)
            Glibc.close(descriptor)
        }
        for watch in watches { inotify_rm_watch(inotify, watch) }
    }

    /// Whether anything is armed or watched for `key`.
    public func isArmed(_ key: String) -> Bool {
        state.withLock { $0.keys[key, default: 0] > 0 }
    }

    /// Ends the thread and closes every descriptor.
    public func close() {
        let descriptors = state.withLock { state -> [Int32]? in
            guard !state.closed else { return nil }
            state.closed = true
            defer { state.triggers.removeAll() }
            return Array(state.triggers.keys)
        }
        guard let descriptors else { return }
        var one: UInt64 = 1
        _ = write(stop, &one, 8)
        if let id = thread.withLock({ $0 }) { pthread_join(id, nil) }
        for descriptor in descriptors + [inotify, stop, epoll] where descriptor >= 0 { Glibc.close(descriptor) }
    }

    @discardableResult
    private func add(_ descriptor: Int32, events: UInt32) -> Bool {
        var event = epoll_event()
        event.events = events
        event.data.fd = descriptor
        return epoll_ctl(epoll, EPOLL_CTL_ADD, descriptor, &event) == 0
    }

    /// The thread's loop: waits, and names the keys of what happened.
    private final class EventLoop {
        let events: LimitEvents
        let wake: @Sendable (String) -> Void

        init(events: LimitEvents, wake: @escaping @Sendable (String) -> Void) {
            self.events = events
            self.wake = wake
        }

        func run() {
            var ready = [epoll_event](repeating: epoll_event(), count: 64)
            while true {
                let count = epoll_wait(events.epoll, &ready, Int32(ready.count), -1)
                if count < 0 {
                    if errno == EINTR { continue }
                    return
                }
                for event in ready.prefix(Int(count)) {
                    let descriptor = event.data.fd
                    if descriptor == events.stop { return }
                    if descriptor == events.inotify {
                        for key in readChanges() { wake(key) }
                        continue
                    }
                    guard let armed = events.state.withLock({ $0.triggers[descriptor] }) else { continue }
                    if event.events & UInt32(EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
                        // The cgroup went away (the unit stopped): armed again once it has a new one.
                        events.disarm(armed.key)
                    }
                    wake(armed.key)
                }
            }
        }

        /// The keys of the files that changed, from the inotify events waiting.
        private func readChanges() -> Set<String> {
            var keys: Set<String> = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(events.inotify, &buffer, buffer.count)
                guard n > 0 else { return keys }
                var offset = 0
                while offset + MemoryLayout<inotify_event>.size <= n {
                    let event = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: inotify_event.self) }
                    if let armed = events.state.withLock({ $0.watches[event.wd] }) {
                        // The file went away with its cgroup: watched again once it is back.
                        if event.mask & UInt32(IN_DELETE_SELF | IN_IGNORED) != 0 { events.disarm(armed.key) }
                        keys.insert(armed.key)
                    }
                    offset += MemoryLayout<inotify_event>.size + Int(event.len)
                }
            }
        }
    }
}
