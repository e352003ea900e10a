import Logging
import Synchronization
import Systemd

/// Which of medicd's services the playbooks need, and whether each is running. systemd's
/// watchdog is pinged only while every one is: a medicd with a detector or listener down is
/// half alive, and systemd should restart it rather than trust it.
final class DetectorStates: Sendable {
    private let running = Mutex<[String: Bool]>([:])

    /// Registers `name` as needed (not running until it says so).
    func expect(_ name: String) {
        running.withLock { $0[name] = $0[name] ?? false }
    }

    /// Marks `name` running or not.
    func set(_ name: String, running value: Bool) {
        running.withLock { $0[name] = value }
    }

    /// Forgets `name`: it is no longer needed (a reload removed it).
    func remove(_ name: String) {
        _ = running.withLock { $0.removeValue(forKey: name) }
    }

    /// The needed services not running now, by name.
    var down: [String] {
        running.withLock { states in states.filter { !$0.value }.map(\.key).sorted() }
    }
}
