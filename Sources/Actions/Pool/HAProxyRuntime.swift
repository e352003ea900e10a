import Systemd
import Foundation
import Glibc
import MedicCore

/// HAProxy's runtime API on its admin socket (`stats socket PATH level admin`, or a TCP
/// `host:port`): one command per connection, answered in well under a millisecond.
public struct HAProxyRuntime: LoadBalancerPool {
    /// How long a command may take, connect included.
    public var timeout: Duration

    public init(timeout: Duration = .seconds(2)) { self.timeout = timeout }

    public func servers(of member: PoolMembership) async throws(PoolError) -> [PoolServer] {
        let answer = try await command("show stat", at: member.haproxy)
        let servers = try Self.parseStat(answer, backend: member.backend, socket: member.haproxy)
        guard !servers.isEmpty else {
            throw PoolError("HAProxy at \(member.haproxy) has no backend '\(member.backend)'")
        }
        return servers
    }

    public func set(_ member: PoolMembership, to state: PoolState) async throws(PoolError) {
        let answer = try await command("set server \(member.backend)/\(member.server) state \(state.rawValue)", at: member.haproxy)
        let text = answer.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.isEmpty else {
            throw PoolError("HAProxy at \(member.haproxy) refused 'set server \(member.backend)/\(member.server) state \(state.rawValue)': \(text)")
        }
    }

    /// The servers of `backend` in `show stat` CSV (the BACKEND and FRONTEND rows left out).
    static func parseStat(_ csv: String, backend: String, socket: String) throws(PoolError) -> [PoolServer] {
        var lines = csv.split(separator: "\n", omittingEmptySubsequences: true)
        guard let header = lines.first, header.hasPrefix("# ") else {
            let text = csv.trimmingCharacters(in: .whitespacesAndNewlines)
            throw PoolError("HAProxy at \(socket) did not answer 'show stat' with CSV: \(text.isEmpty ? "an empty answer" : String(text.prefix(200)))")
        }
        lines.removeFirst()
        let columns = header.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let px = columns.firstIndex(of: "pxname"), let sv = columns.firstIndex(of: "svname"),
              let scur = columns.firstIndex(of: "scur"), let status = columns.firstIndex(of: "status")
        else { throw PoolError("HAProxy at \(socket) answered 'show stat' without pxname, svname, scur and status columns") }
        return lines.compactMap { line -> PoolServer? in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard fields.count > max(px, sv, scur, status), fields[px] == backend, fields[sv] != "BACKEND", fields[sv] != "FRONTEND" else { return nil }
            let text = fields[status]
            let admin: PoolState = text.hasPrefix("MAINT") ? .maint : text.hasPrefix("DRAIN") ? .drain : .ready
            return PoolServer(name: fields[sv], admin: admin, status: text, sessions: Int(fields[scur]) ?? 0)
        }
    }

    /// Sends one command and reads the whole answer (HAProxy closes the connection after it).
    func command(_ text: String, at address: String) async throws(PoolError) -> String {
        let timeout = self.timeout
        // Blocking connect, send and receive with timeouts, on a thread of its own.
        let result: Result<String, PoolError> = await onThreadOfItsOwn("medic-haproxy") {
            Result { () throws(PoolError) -> String in try Self.exchange(text, address: address, timeout: timeout) }
        }
        return try result.get()
    }

    private static func exchange(_ text: String, address: String, timeout: Duration) throws(PoolError) -> String {
        let fd: Int32
        if address.hasPrefix("/") {
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        } else {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        guard fd >= 0 else { throw PoolError("cannot reach HAProxy at \(address): socket: \(errorName())") }
        defer { close(fd) }
        var limit = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let connected: Int32
        if address.hasPrefix("/") {
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let path = Array(address.utf8)
            guard path.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw PoolError("HAProxy's socket path is too long: \(address)") }
            withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: path) }
            connected = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        } else {
            guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
                throw PoolError("HAProxy's address '\(address)' is neither a socket path nor HOST:PORT")
            }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = port.bigEndian
            guard inet_pton(AF_INET, String(address[..<colon]), &addr.sin_addr) == 1 else {
                throw PoolError("HAProxy's address '\(address)' needs an IPv4 address before the port")
            }
            connected = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard connected == 0 else {
            let why = errno == EACCES ? "permission denied (medicd must be allowed to open the admin socket)" : errorName()
            throw PoolError("HAProxy is unreachable at \(address): connect: \(why)")
        }
        let request = Array((text + "\n").utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else {
            throw PoolError("cannot send to HAProxy at \(address): \(errorName())")
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 { answer += buffer[0..<n]; continue }
            if n == 0 { break }
            if errno == EINTR { continue }
            if errno == EAGAIN { throw PoolError("HAProxy at \(address) did not answer '\(text)' within \(DurationText.format(timeout))") }
            throw PoolError("reading HAProxy's answer at \(address): \(errorName())")
        }
        let string = String(decoding: answer, as: UTF8.self)
        if string.hasPrefix("Permission denied") {
            throw PoolError("HAProxy at \(address) refused '\(text)': permission denied (the socket needs 'level admin')")
        }
        return string
    }

    private static func errorName() -> String { String(cString: strerror(errno)) }
}
