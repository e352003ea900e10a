import Glibc

/// Where a socket connects or listens: a Unix socket path, or an IPv4 address and port.
public enum SocketAddress: Sendable, Equatable, CustomStringConvertible {
    case unix(String)
    case ipv4(host: String, port: UInt16)

    /// A path if `text` starts with `/`, else `HOST:PORT` with an IPv4 host; nil otherwise.
    public init?(_ text: String) {
        if text.hasPrefix("/") {
            self = .unix(text)
            return
        }
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
        var probe = in_addr()
        let host = String(text[..<colon])
        guard inet_pton(AF_INET, host, &probe) == 1 else { return nil }
        self = .ipv4(host: host, port: port)
    }

    /// 127.0.0.1 at `port`.
    public static func loopback(_ port: Int) -> SocketAddress { .ipv4(host: "127.0.0.1", port: UInt16(port)) }

    public var description: String {
        switch self {
        case .unix(let path): path
        case .ipv4(let host, let port): "\(host):\(port)"
        }
    }

    var family: Int32 {
        switch self {
        case .unix: AF_UNIX
        case .ipv4: AF_INET
        }
    }

    /// Calls `body` with the address as a `sockaddr` and its length; throws ENAMETOOLONG for a
    /// path that does not fit and EINVAL for a host that is not an IPv4 address.
    func withSockaddr<T>(_ call: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) throws(PosixError) -> T {
        switch self {
        case .unix(let path):
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw PosixError(call, code: ENAMETOOLONG) }
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        case .ipv4(let host, let port):
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw PosixError(call, code: EINVAL) }
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
    }
}
