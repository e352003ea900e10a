import Glibc
import Synchronization

/// A socket descriptor, owned: closed once, by `close()` or when the last reference goes.
/// Every call that can fail throws a `PosixError` naming the call and the address. Calls that
/// wait (connect, accept, receive) block the calling thread: make them on a thread of their
/// own, never on those of Swift concurrency.
///
/// `shutdown()` wakes a thread blocked in a receive or accept on it, which then sees the end;
/// that thread, not another, should `close()` it, so that the descriptor's number is never
/// reused under a call still in progress.
public final class Socket: Sendable {
    /// The descriptor; -1 once closed.
    public var descriptor: Int32 { closed.load(ordering: .acquiring) ? -1 : fd }
    /// What it is connected or bound to, for messages.
    public let address: SocketAddress
    private let fd: Int32
    private let closed = Atomic<Bool>(false)

    /// Takes ownership of `fd`.
    public init(adopting fd: Int32, address: SocketAddress) {
        self.fd = fd
        self.address = address
    }

    deinit { close() }

    public enum Kind: Sendable {
        case stream, datagram

        var raw: Int32 {
            switch self {
            case .stream: Int32(SOCK_STREAM.rawValue)
            case .datagram: Int32(SOCK_DGRAM.rawValue)
            }
        }
    }

    /// A socket connected to `address` (a datagram one sends there); `timeout` bounds each
    /// later receive and send.
    public static func connect(to address: SocketAddress, _ kind: Kind = .stream, timeout: Duration? = nil) throws(PosixError) -> Socket {
        let socket = try open(address, kind)
        if let timeout { socket.setTimeout(timeout) }
        let connected = try address.withSockaddr("connect(\(address))") { Glibc.connect(socket.fd, $0, $1) }
        guard connected == 0 else { throw PosixError("connect(\(address))") }
        return socket
    }

    /// A socket bound at `address`: a stale Unix socket file there is replaced, and the new one
    /// gets `mode` (created under a umask that lets nobody in until then). A stream socket
    /// listens, with `backlog`.
    public static func bind(
        _ address: SocketAddress, _ kind: Kind, mode: mode_t? = nil, owner: (uid_t, gid_t)? = nil, backlog: Int32 = 64
    ) throws(PosixError) -> Socket {
        let socket = try open(address, kind)
        if case .unix(let path) = address {
            unlink(path)
            let old = umask(0o177)
            defer { umask(old) }
            let bound = try address.withSockaddr("bind(\(path))") { Glibc.bind(socket.fd, $0, $1) }
            guard bound == 0 else { throw PosixError("bind(\(path))") }
            if let (uid, gid) = owner, chown(path, uid, gid) != 0 { throw PosixError("chown(\(path))") }
            if let mode, chmod(path, mode) != 0 { throw PosixError("chmod(\(path))") }
        } else {
            var one: Int32 = 1
            setsockopt(socket.fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            let bound = try address.withSockaddr("bind(\(address))") { Glibc.bind(socket.fd, $0, $1) }
            guard bound == 0 else { throw PosixError("bind(\(address))") }
        }
        if kind == .stream, listen(socket.fd, backlog) != 0 { throw PosixError("listen(\(address))") }
        return socket
    }

    private static func open(_ address: SocketAddress, _ kind: Kind) throws(PosixError) -> Socket {
        let fd = Glibc.socket(address.family, kind.raw | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw PosixError("socket(\(address))") }
        return Socket(adopting: fd, address: address)
    }

    /// The port the kernel gave an IPv4 socket bound to port 0.
    public var localPort: Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Bounds each receive and send from now on: past it, they throw a timeout.
    public func setTimeout(_ timeout: Duration) {
        let whole = timeout.components.seconds, micros = timeout.components.attoseconds / 1_000_000_000_000
        var limit = timeval(tv_sec: Int(whole), tv_usec: Int(max(micros, whole == 0 ? 1 : 0)))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Turns a boolean socket option on (e.g. `SO_PASSCRED`).
    public func enable(_ option: Int32) {
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, option, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Waits for the next connection; throws when interrupted by `shutdown()` or out of
    /// descriptors (EMFILE: the caller may wait and try again). EINTR and ECONNABORTED are
    /// retried here.
    public func accept() throws(PosixError) -> Socket {
        while true {
            let client = Glibc.accept(fd, nil, nil)
            if client >= 0 {
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                return Socket(adopting: client, address: address)
            }
            if errno == EINTR || errno == ECONNABORTED { continue }
            throw PosixError("accept(\(address))")
        }
    }

    /// Sends all of `bytes` (never raising SIGPIPE).
    public func send(_ bytes: [UInt8]) throws(PosixError) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw PosixError("send(\(address))") }
            sent += n
        }
    }

    /// Sends `text` as UTF-8.
    public func send(_ text: String) throws(PosixError) { try send(Array(text.utf8)) }

    /// The next bytes that come, up to `maximum`; empty at the end of the stream.
    public func receive(maximum: Int = 65_536) throws(PosixError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: maximum)
        while true {
            let n = recv(fd, &buffer, maximum, 0)
            if n >= 0 { return Array(buffer[0..<n]) }
            if errno == EINTR { continue }
            throw PosixError("recv(\(address))")
        }
    }

    /// Everything until the peer closes; throws if it is more than `limit` bytes.
    public func receiveAll(limit: Int = 16 << 20) throws(PosixError) -> [UInt8] {
        var data: [UInt8] = []
        while true {
            let chunk = try receive()
            if chunk.isEmpty { return data }
            data += chunk
            if data.count > limit { throw PosixError("recv(\(address))", code: EMSGSIZE) }
        }
    }

    /// Exactly `count` bytes; throws ECONNRESET if the stream ends before them.
    public func receive(exactly count: Int) throws(PosixError) -> [UInt8] {
        var data: [UInt8] = []
        data.reserveCapacity(count)
        while data.count < count {
            let chunk = try receive(maximum: count - data.count)
            if chunk.isEmpty { throw PosixError("recv(\(address)): the stream ended after \(data.count) of \(count) bytes", code: ECONNRESET) }
            data += chunk
        }
        return data
    }

    /// Bytes until the first newline (included) or the end, whichever comes first; throws if
    /// more than `limit` bytes come before it.
    public func receiveLine(limit: Int) throws(PosixError) -> [UInt8] {
        var data: [UInt8] = []
        while !data.contains(UInt8(ascii: "\n")) {
            let chunk = try receive()
            if chunk.isEmpty { break }
            data += chunk
            if data.count > limit { throw PosixError("recv(\(address))", code: EMSGSIZE) }
        }
        return data
    }

    /// A datagram or bytes already waiting, without waiting; nil if none.
    public func receiveNow(maximum: Int = 65_536) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: maximum)
        let n = recv(fd, &buffer, maximum, Int32(MSG_DONTWAIT))
        return n > 0 ? Array(buffer[0..<n]) : nil
    }

    /// Waits up to `timeout` for something to read; whether it came.
    public func waitReadable(_ timeout: Duration) -> Bool {
        let ms = timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, Int32(clamping: max(1, ms))) > 0
    }

    /// Ends the sending side, then reads and discards what the peer still sends until it
    /// closes, `limit` bytes have come, or `timeout` has passed; then closes. Closing a socket
    /// with unread input resets the connection, and the peer may lose the answer sent just
    /// before it (a refusal of a request too large, say): this is nginx's lingering close.
    /// Blocks for up to `timeout`.
    public func closeLingering(within timeout: Duration, discardingAtMost limit: Int = 16 << 20) {
        defer { close() }
        guard Glibc.shutdown(fd, Int32(SHUT_WR)) == 0 else { return }
        let deadline = ContinuousClock.now + timeout
        var discarded = 0
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while discarded < limit {
            let left = deadline - ContinuousClock.now
            guard left > .zero, waitReadable(left) else { return }
            let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN) { return }
            discarded += max(n, 0)
        }
    }

    /// Ends both directions: a thread blocked on it wakes and sees the end.
    public func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    /// Closes the descriptor (once, whoever calls it).
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        _ = Glibc.close(fd)
    }
}
