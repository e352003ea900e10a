import CSystemd
import Foundation
import Glibc

/// The receiving end of the sd_notify protocol: a datagram socket that programs reach through
/// `NOTIFY_SOCKET`, each message delivered with the sender's PID (from the kernel's
/// SCM_CREDENTIALS, which a sender cannot forge). Owns its socket; `close()` ends it.
public final class NotifyServer: @unchecked Sendable {
    /// One datagram: `KEY=value` lines, and who sent it.
    public struct Message: Sendable {
        public var pid: pid_t
        public var fields: [String: String]
    }

    /// The socket's path.
    public let path: String
    /// The messages, in the order they arrived.
    public let messages: AsyncStream<Message>
    private let fd: Int32

    /// Binds a socket at `path` (replacing a stale one) that anyone may write to.
    public init(path: String) throws(SystemdError) {
        self.path = path
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw SystemdError(call: "socket(AF_UNIX, SOCK_DGRAM)", errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(fd)
            throw SystemdError(call: "bind(\(path))", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if bound != 0 {
            let error = errno
            Glibc.close(fd)
            throw SystemdError(call: "bind(\(path))", errno: error)
        }
        chmod(path, 0o666)
        self.fd = fd
        let (stream, continuation) = AsyncStream.makeStream(of: Message.self, bufferingPolicy: .bufferingNewest(4096))
        messages = stream
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                var pid: Int32 = 0
                let n = medic_recv_with_pid(fd, &buffer, UInt(buffer.count), &pid)
                if n < 0 {
                    if errno == EINTR { continue }
                    break
                }
                var fields: [String: String] = [:]
                for line in String(decoding: buffer[0..<n], as: UTF8.self).split(separator: "\n") {
                    guard let eq = line.firstIndex(of: "=") else { continue }
                    fields[String(line[..<eq])] = String(line[line.index(after: eq)...])
                }
                continuation.yield(Message(pid: pid, fields: fields))
            }
            continuation.finish()
        }
        thread.name = "medic-notify"
        thread.start()
    }

    /// Stops receiving and removes the socket.
    public func close() {
        shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
        unlink(path)
    }
}
