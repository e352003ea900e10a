import Engine
import Logging
import ServiceLifecycle
import Systemd

/// Pings systemd's watchdog (WATCHDOG=1) at half the interval it asked for, but only after the
/// engine has answered and while every service the playbooks need is running (`DetectorStates`):
/// a wedged engine, or a medicd with a detector or listener down, stops the pings and systemd
/// restarts medicd.
struct WatchdogPinger: Service {
    let interval: Duration
    let engine: Engine
    let states: DetectorStates
    let logger: Logger

    func run() async throws {
        // ServiceGroup shuts services down one by one, last first: return at once when asked.
        do {
            try await cancelWhenGracefulShutdown {
                var withheld: [String] = []
                while true {
                    _ = await engine.counters
                    let down = states.down
                    if down.isEmpty {
                        Notify.watchdog()
                    } else if down != withheld {
                        logger.critical("not pinging systemd's watchdog: \(down.joined(separator: ", ")) not running")
                    }
                    withheld = down
                    try await Task.sleep(for: interval / 2)
                }
            }
        } catch is CancellationError {
            return
        }
    }
}
