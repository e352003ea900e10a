import CSystemd
import Glibc

/// The sd_notify protocol: telling the service manager about this process's state. A no-op when
/// the process was not started by systemd with a notify socket. A send can block while the
/// socket's queue is full, so every notification is sent from a thread of its own, in order, and
/// the caller never waits; of several `STATUS=` lines not yet sent, only the latest is.
public enum Notify {
    private static let sender = BlockingCallThread(name: "medic-sd-notify", capacity: 64)
    /// `$NOTIFY_SOCKET` as it was at the first message, when medicd can send to it itself.
    private static let socket = NotifySocket(environment: getenv("NOTIFY_SOCKET").map { String(cString: $0) })

    /// Sends raw `KEY=value` lines, later, from the notify thread; a `key` replaces a message
    /// with the same key not yet sent. Sent on medicd's own socket (`NotifySocket`); through
    /// sd_notify when the address is of another kind or that send failed.
    public static func send(_ state: String, key: String? = nil) {
        sender.post(key: key) {
            if socket?.send(state) != true { _ = sd_notify(0, state) }
        }
    }

    /// Startup is finished (`READY=1`), optionally with a status line.
    public static func ready(status: String? = nil) {
        send(status.map { "READY=1\nSTATUS=\(oneLine($0))" } ?? "READY=1")
    }

    /// A one-line status shown by `systemctl status`.
    public static func status(_ text: String) { send("STATUS=\(oneLine(text))", key: "STATUS") }

    /// Keeps the watchdog from firing (`WATCHDOG=1`).
    public static func watchdog() { send("WATCHDOG=1", key: "WATCHDOG") }

    /// Shutdown has begun (`STOPPING=1`).
    public static func stopping() { send("STOPPING=1") }

    /// The watchdog interval systemd expects pings within, if it enabled one for this process.
    public static func watchdogInterval() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(usec))
    }

    private static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }
}
