import Dispatch
import Glibc
import Synchronization

/// Stops what a tool started when the tool is interrupted. A Ctrl-C (or a `kill` of the tool)
/// otherwise ends the tool before its `defer`s and `deinit`s run, and leaves a test host's
/// systemd running with every service it started, its tmpfs mounted and its cgroup behind.
///
/// Test hosts and child programs (HAProxy, etcd, medicd…) register themselves while they run.
/// After `stopEverythingOnSignals()`, SIGINT, SIGTERM or SIGHUP stops each of them by its PID,
/// the newest first, removes the hosts' mounts and cgroups, and ends the tool as the signal
/// would have (exit status 128 + its number). A tool ends through `exit(by:)`, so that an
/// interruption's stopping is not cut short.
public enum Interruption {
    private struct Running {
        var stops: [(owner: ObjectIdentifier, stop: @Sendable () -> Void)] = []
        /// Set by the first signal, or by the tool's own end: a second signal then does
        /// nothing, and the tool's end waits for the first signal's stopping to end the tool.
        var stopping = false
    }
    private static let running = Mutex(Running())
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    /// Call once, first thing in a tool's `main`.
    public static func stopEverythingOnSignals() {
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            Glibc.signal(signal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
            source.setEventHandler { stopEverything(exitingWith: 128 + signal) }
            source.resume()
            sources.append(source)
        }
    }

    /// Ends the tool with `end` (an `exit`), unless an interruption is already stopping
    /// everything: then it waits for that to end the tool, which an exit now would cut short.
    public static func exit(by end: () -> Never) -> Never {
        let first = running.withLock { running in
            defer { running.stopping = true }
            return !running.stopping
        }
        if first { end() }
        while true { pause() }
    }

    /// Registers `stop` for `owner` until `unregister(owner)`.
    static func register(_ owner: AnyObject, stop: @escaping @Sendable () -> Void) {
        running.withLock { $0.stops.append((ObjectIdentifier(owner), stop)) }
    }

    static func unregister(_ owner: AnyObject) {
        let key = ObjectIdentifier(owner)
        running.withLock { $0.stops.removeAll { $0.owner == key } }
    }

    private static func stopEverything(exitingWith status: Int32) {
        let stops = running.withLock { running -> [@Sendable () -> Void]? in
            if running.stopping { return nil }
            running.stopping = true
            return running.stops.map(\.stop)
        }
        guard let stops else { return }
        for stop in stops.reversed() { stop() }
        Glibc.exit(status)
    }
}
