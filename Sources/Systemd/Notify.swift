import CSystemd

/// sd_notify: telling the service manager about this process's state. Every call is a no-op
/// returning false when the process was not started by systemd with a notify socket.
public enum Notify {
    /// Sends raw `KEY=value` lines; returns true when a notification was sent.
    @discardableResult
    public static func send(_ state: String) -> Bool {
        sd_notify(0, state) > 0
    }

    /// Startup is finished (`READY=1`), optionally with a status line.
    @discardableResult
    public static func ready(status: String? = nil) -> Bool {
        send(status.map { "READY=1\nSTATUS=\(oneLine($0))" } ?? "READY=1")
    }

    /// A one-line status shown by `systemctl status`.
    @discardableResult
    public static func status(_ text: String) -> Bool { send("STATUS=\(oneLine(text))") }

    /// Keeps the watchdog from firing (`WATCHDOG=1`).
    @discardableResult
    public static func watchdog() -> Bool { send("WATCHDOG=1") }

    /// Shutdown has begun (`STOPPING=1`).
    @discardableResult
    public static func stopping() -> Bool { send("STOPPING=1") }

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
