import Systemd
import Foundation
import Glibc
import MedicCore
import Posix

/// HAProxy's runtime API on its admin socket (`stats socket PATH level admin`, or a TCP
/// `host:port`): one command per connection, answered in well under a millisecond.
public struct HAProxyRuntime: LoadBalancerPool {
    /// How long a command may take, connect included.
    public var timeout: Duration

    public init(timeout: Duration = .seconds(2)) { self.timeout = timeout }

    public func servers(of member: PoolMembership) async throws(PoolError) -> [PoolServer] {
        let answer = try await command("show stat", at: member.balancer.address)
        let servers = try Self.parseStat(answer, backend: member.backend, socket: member.balancer.address)
        guard !servers.isEmpty else {
            throw PoolError("HAProxy at \(member.balancer.address) has no backend '\(member.backend)'")
        }
        return servers
    }

    public func set(_ member: PoolMembership, to state: PoolState) async throws(PoolError) {
        let answer = try await command("set server \(member.backend)/\(member.server) state \(state.rawValue)", at: member.balancer.address)
        let text = answer.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.isEmpty else {
            throw PoolError("HAProxy at \(member.balancer.address) refused 'set server \(member.backend)/\(member.server) state \(state.rawValue)': \(text)")
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
        guard let target = SocketAddress(address) else {
            throw PoolError("HAProxy's address '\(address)' is neither a socket path nor HOST:PORT with an IPv4 host")
        }
        let socket: Socket
        do {
            socket = try Socket.connect(to: target, timeout: timeout)
        } catch {
            let why = error.code == EACCES ? "permission denied (medicd must be allowed to open the admin socket)" : error.reason
            throw PoolError("HAProxy is unreachable at \(address): connect: \(why)")
        }
        defer { socket.close() }
        let answer: [UInt8]
        do {
            try socket.send(text + "\n")
            answer = try socket.receiveAll()
        } catch {
            if error.isTimeout { throw PoolError("HAProxy at \(address) did not answer '\(text)' within \(DurationText.format(timeout))") }
            throw PoolError("talking to HAProxy at \(address): \(error)")
        }
        let string = String(decoding: answer, as: UTF8.self)
        if string.hasPrefix("Permission denied") {
            throw PoolError("HAProxy at \(address) refused '\(text)': permission denied (the socket needs 'level admin')")
        }
        return string
    }
}
