import Engine
import ServiceLifecycle
import Systemd

/// Pings systemd's watchdog (WATCHDOG=1) at half the interval it asked for, but only after the
/// engine has answered: a wedged engine stops the pings and systemd restarts medicd.
struct WatchdogPinger: Service {
    let interval: Duration
    let engine: Engine

    func run() async throws {
        // ServiceGroup shuts services down one by one, last first: return at once when asked.
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    _ = await engine.counters
                    Notify.watchdog()
                    try await Task.sleep(for: interval / 2)
                }
            }
        } catch is CancellationError {
            return
        }
    }
}
