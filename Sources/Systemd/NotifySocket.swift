import Glibc

/// The service manager's notification socket (`$NOTIFY_SOCKET`) when it is a file system path or
/// an abstract name (`@name`), and a datagram socket of this process's own to send to it: the
/// protocol of sd_notify(3), which systemd documents as stable for programs that send without
/// libsystemd. A message is one `sendto`. libsystemd's sd_notify parses the variable and opens,
/// connects and closes a socket for every message: at each watchdog ping after the settle its
/// code mapped 0.3 MiB of libsystemd and 0.2 MiB of libc back into medicd (`ColdPages`). Any
/// other kind of address (`vsock:`) is left to sd_notify. The socket stays open for as long as
/// the process runs (`Notify` keeps one).
struct NotifySocket: Sendable {
    let descriptor: Int32
    let address: sockaddr_un
    let length: socklen_t

    /// nil when `value` (the variable's) is unset, empty, neither a path nor an abstract name,
    /// too long for a socket address, or no socket could be opened.
    init?(environment value: String?) {
        guard let value, let first = value.utf8.first, first == UInt8(ascii: "/") || first == UInt8(ascii: "@") else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var name = Array(value.utf8)
        // An abstract name starts with a zero byte and is exactly as long as it is.
        if first == UInt8(ascii: "@") { name[0] = 0 }
        guard name.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: name) }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        self.descriptor = descriptor
        self.address = address
        // A path is terminated by a zero byte; an abstract name is not.
        self.length = socklen_t(MemoryLayout.offset(of: \sockaddr_un.sun_path)! + name.count + (first == UInt8(ascii: "/") ? 1 : 0))
    }

    /// Sends `message` as one datagram; false when it was not sent. Waits while the manager's
    /// queue is full, as sd_notify does: call it from a thread of its own.
    func send(_ message: String) -> Bool {
        var address = address
        var bytes = Array(message.utf8)
        return withUnsafePointer(to: &address) { target in
            target.withMemoryRebound(to: sockaddr.self, capacity: 1) { target in
                bytes.withUnsafeMutableBytes { buffer in
                    while true {
                        let sent = sendto(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), target, length)
                        if sent == buffer.count { return true }
                        if sent < 0, errno == EINTR { continue }
                        return false
                    }
                }
            }
        }
    }
}
