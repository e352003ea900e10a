import Engine
import Foundation
import Glibc
import Logging
import ServiceLifecycle
import Synchronization
import Posix

/// Runs one of medicd's services for the daemon's whole life. If it ends or fails while medicd
/// is not shutting down, it is restarted in place after a back-off (1 s, doubling up to 30 s),
/// and the audit log says why. After `maximumFailures` within `window`, medicd gives up on
/// itself: it exits non-zero so that systemd restarts it whole (`FatalExit`), never lingering
/// half alive. While the service is down, `states` says so and the watchdog is not pinged; a
/// detector's `medic_detector_up` gauge (given `metrics`) says so too.
struct Resilient<Inner: Service>: Service {
    let name: String
    let inner: Inner
    let states: DetectorStates
    /// For a detector: its `medic_detector_up{detector=name}` gauge.
    var metrics: MedicMetrics? = nil
    let engine: Engine
    let logger: Logger
    var maximumFailures = 5
    var window: Duration = .seconds(300)

    func run() async throws {
        try await runResiliently(name: name, states: states, metrics: metrics, engine: engine, logger: logger,
                                 maximumFailures: maximumFailures, window: window) {
            try await inner.run()
        }
    }
}

/// Runs `body` again each time it ends or fails while medicd is not stopping (see `Resilient`);
/// returns once cancelled or shutting down, and throws `ServiceGaveUp` (with `FatalExit` armed)
/// when it failed `maximumFailures` times within `window`.
func runResiliently(
    name: String, states: DetectorStates, metrics: MedicMetrics?, engine: Engine, logger: Logger,
    maximumFailures: Int = 5, window: Duration = .seconds(300), body: () async throws -> Void
) async throws {
    states.expect(name)
    var failures: [ContinuousClock.Instant] = []
    var delay: Duration = .seconds(1)
    while true {
        let why: String
        states.set(name, running: true)
        metrics?.detector(name, up: true)
        do {
            try await body()
            why = "ended"
        } catch {
            why = "failed: \(error)"
        }
        states.set(name, running: false)
        metrics?.detector(name, up: false)
        if Task.isShuttingDownGracefully || Task.isCancelled { return }
        let now = ContinuousClock.now
        failures = failures.filter { now - $0 < window } + [now]
        if failures.count >= maximumFailures {
            let message = "\(name) \(why), \(failures.count) times in \(window.components.seconds / 60) min: medicd exits so that systemd restarts it"
            logger.critical("\(message)")
            await engine.note(message)
            FatalExit.arm(after: .seconds(10))
            throw ServiceGaveUp(message: message)
        }
        let message = "\(name) \(why) while medicd runs; restarting it in \(delay.components.seconds) s"
        logger.error("\(message)")
        await engine.note(message)
        do {
            try await Task.sleep(for: delay)
        } catch {
            return
        }
        delay = min(delay * 2, .seconds(30))
    }
}

/// A service that failed too often to be restarted in place.
struct ServiceGaveUp: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// The last resort when medicd must exit: if the orderly stop has not ended the process
/// within the grace period (a service that does not stop), it ends with status 1 all the same.
public enum FatalExit {
    private static let armed = Atomic<Bool>(false)

    /// Starts the grace period; a second call (a service gave up, then the group ended) adds none.
    public static func arm(after grace: Duration) {
        guard !armed.exchange(true, ordering: .relaxed) else { return }
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: Double(grace.components.seconds))
            StandardStream.write("medicd: did not stop within \(grace.components.seconds) s of a fatal failure; exiting\n", to: STDERR_FILENO)
            _exit(1)
        }
    }
}
