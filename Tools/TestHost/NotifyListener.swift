import Glibc
import Posix

/// A notify socket of our own, for programs started outside systemd: point their
/// `NOTIFY_SOCKET` at `path` and read what they send (`READY=1`, `STATUS=…`), as systemd would.
public final class NotifyListener: Sendable {
    /// The socket's path, for `NOTIFY_SOCKET`.
    public let path: String
    private let socket: Socket

    public init(directory: String) throws {
        path = directory + "/notify.sock"
        socket = try Socket.bind(.unix(path), .datagram, mode: 0o600)
    }

    deinit {
        socket.close()
        unlink(path)
    }

    /// Waits up to `timeout` for a message containing `line` (e.g. `READY=1`); returns the
    /// whole message, or nil on timeout.
    public func wait(for line: String, timeout: Duration) -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard socket.waitReadable(deadline - ContinuousClock.now), let bytes = socket.receiveNow() else { continue }
            let message = String(decoding: bytes, as: UTF8.self)
            if message.split(separator: "\n").contains(where: { $0 == line }) { return message }
        }
        return nil
    }

    /// Every message that arrived and was not read yet, without waiting.
    public func received() -> [String] {
        var messages: [String] = []
        while let bytes = socket.receiveNow() { messages.append(String(decoding: bytes, as: UTF8.self)) }
        return messages
    }
}
