import Control
import Dispatch
import Foundation
import Glibc
import Logging
import MedicCore
import NIOPosix
import Posix
import ServiceLifecycle
import Synchronization
import Systemd

/// medicd's control socket (`RUNTIME/control.sock`, mode 0660, owner root, group `group`): one
/// JSON request a line per connection, one JSON answer. The caller is known by SO_PEERCRED:
/// reading (`status`) is for root and the socket's group, changing anything for root and the
/// admin group. Requests over 64 KiB, slower than 2 s or malformed are refused, and the daemon
/// goes on. What can wait (reading a request, looking the caller's groups up) runs on threads
/// of its own, never on those of Swift concurrency that detect and heal; past
/// `maximumConnections` at once, a connection is closed as it is accepted.
struct ControlServer: Service {
    let path: String
    let group: gid_t
    let adminGroup: gid_t?
    let handler: ControlHandler
    let logger: Logger

    /// Refusals recorded in the audit log, at most so many a minute.
    let refusals = RefusalLog()

    static let requestLimit = 65_536
    /// Connections served at once; more are closed at once (load shed at the edge).
    static let maximumConnections = 32

    func run() async throws {
        let listener = try bind()
        defer { unlink(path) }
        logger.info("control socket \(path) (group \(group))")
        let readers = NIOThreadPool(numberOfThreads: 4)
        readers.start()
        let connections = ConnectionCount()
        let clients = AsyncStream(Socket.self) { continuation in
            Thread.detachNewThread {
                var starved = false
                while true {
                    do throws(PosixError) {
                        let client = try listener.accept()
                        starved = false
                        guard connections.open.add(1, ordering: .relaxed).newValue <= Self.maximumConnections else {
                            connections.open.subtract(1, ordering: .relaxed)
                            connections.shed.add(1, ordering: .relaxed)
                            client.close()
                            continue
                        }
                        continuation.yield(client)
                    } catch {
                        guard [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.code) else { break }
                        // Out of descriptors or memory for now: wait, and accept again.
                        if !starved { logger.error("control socket: cannot accept (\(error.reason)); trying again every 100 ms") }
                        starved = true
                        usleep(100_000)
                    }
                }
                // This thread closes it: the descriptor's number cannot be reused under its accept.
                listener.close()
                continuation.finish()
            }
        }
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await client in clients {
                    group.addTask {
                        await serve(client, readers: readers)
                        connections.open.subtract(1, ordering: .relaxed)
                    }
                    let dropped = connections.shed.exchange(0, ordering: .relaxed)
                    if dropped > 0 {
                        logger.warning("control: \(dropped) connections closed unread: \(Self.maximumConnections) were being served already")
                    }
                }
            }
        } onGracefulShutdown: {
            listener.shutdown()
        }
        try? await readers.shutdownGracefully()
    }

    private func bind() throws -> Socket {
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let socket: Socket
        do {
            // Created 0600 and opened to the group only once its owner is right.
            socket = try Socket.bind(.unix(path), .stream, mode: 0o660, owner: (0, group))
        } catch {
            throw ControlServerError("cannot listen on the control socket \(path): \(error)")
        }
        if let adminGroup, adminGroup != group {
            // The admin group connects too: an ACL entry beside the socket's own group.
            if let problem = SocketACL.allow(group: adminGroup, on: path) {
                logger.warning("control: the admin group cannot connect to \(path) unless it is also in group \(Caller.groupName(group)): \(problem)")
            }
        }
        return socket
    }

    /// Reads one request, checks who sent it, answers, closes.
    private func serve(_ client: Socket, readers: NIOThreadPool) async {
        defer { client.close() }
        let answer: ControlResponse
        // Reading and the caller's groups (NSS may ask a directory server) can wait: not here.
        let (read, caller) = (try? await readers.runIfActive { () -> (Result<ControlRequest, Problem>, Caller?) in
            (Self.readRequest(client), PeerCredentials(socket: client.descriptor).map(Caller.init))
        }) ?? (.failure(Problem(description: "medicd is stopping")), nil)
        switch (read, caller) {
        case (.failure(let problem), _):
            answer = .failure(problem.description)
            await refused("a request", by: caller, problem.description)
        case (.success(let request), nil):
            answer = .failure("cannot tell who is asking (no SO_PEERCRED)")
            await refused(request.command.rawValue, by: nil, "no SO_PEERCRED")
        case (.success(let request), let caller?):
            if let refusal = authorize(request.command, caller) {
                answer = .failure(refusal)
                await refused(request.command.rawValue, by: caller, refusal)
            } else {
                answer = await handler.handle(request, actor: caller.actor)
            }
        }
        var line = (try? JSONEncoder().encode(answer)) ?? Data("{\"ok\":false}".utf8)
        line.append(UInt8(ascii: "\n"))
        // A caller that does not read can hold a send for up to its 2 s timeout, and one still
        // sending (past the size limit) for the lingering close: not on this thread.
        let bytes = Array(line)
        _ = try? await readers.runIfActive {
            try? client.send(bytes)
            client.closeLingering(within: .seconds(2))
        }
    }

    /// Logs a refused request, and audits it (who, what, why) at most `RefusalLog.perMinute`
    /// times a minute, so that a flood cannot fill the audit log: the next record says how many
    /// were refused meanwhile.
    private func refused(_ what: String, by caller: Caller?, _ why: String) async {
        let who = caller?.actor ?? "an unknown caller"
        logger.warning("control: refused \(what) from \(who): \(why)")
        guard let unrecorded = refusals.admit(at: ContinuousClock.now) else { return }
        await handler.engine.record(AuditRecord(
            kind: .daemon,
            message: "control socket: refused \(what) from \(who): \(why)"
                + (unrecorded > 0 ? " (and \(unrecorded) more refused before it, not recorded one by one)" : ""),
            details: ["refused": what, "reason": why, "unrecorded_refusals": String(unrecorded)], actor: who))
    }

    /// nil if `caller` may send `command`, else why not.
    func authorize(_ command: ControlRequest.Command, _ caller: Caller) -> String? {
        if caller.uid == 0 { return nil }
        if let admin = adminGroup, caller.groups.contains(admin) { return nil }
        if !command.changes, caller.groups.contains(group) { return nil }
        return command.changes
            ? "permission denied: \(command.rawValue) changes what Medic does; only root" + (adminGroup.map { " and group \(Caller.groupName($0))" } ?? "") + " may"
            : "permission denied: only root and group \(Caller.groupName(group)) may read medicd's status"
    }

    private struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// One line of JSON, within the size and time limits. Blocks for up to 2 s: call it on a
    /// thread of the readers' pool.
    private static func readRequest(_ client: Socket) -> Result<ControlRequest, Problem> {
        client.setTimeout(.seconds(2))
        let data: [UInt8]
        do {
            data = try client.receiveLine(limit: requestLimit)
        } catch {
            if error.code == EMSGSIZE { return .failure(Problem(description: "request too large: at most \(requestLimit / 1024) KiB")) }
            if error.isTimeout { return .failure(Problem(description: "no complete request within 2 s")) }
            return .failure(Problem(description: "cannot read the request: \(error.reason)"))
        }
        let line = data.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        do {
            return .success(try JSONDecoder().decode(ControlRequest.self, from: Data(line)))
        } catch {
            let commands = ControlRequest.Command.allCases.map(\.rawValue).joined(separator: ", ")
            return .failure(Problem(description: "malformed request: expected one JSON object a line with \"command\" (one of \(commands))"))
        }
    }
}

/// How many refused requests go into the audit log: at most `perMinute` a minute; the rest
/// are counted, and the next one recorded says how many.
final class RefusalLog: Sendable {
    static let perMinute = 10
    private let state = Mutex<(since: ContinuousClock.Instant?, recorded: Int, unrecorded: Int)>((nil, 0, 0))

    /// nil: not to be recorded; else how many went unrecorded before this one.
    func admit(at now: ContinuousClock.Instant) -> Int? {
        state.withLock { state in
            if state.since.map({ now - $0 >= .seconds(60) }) ?? true {
                state.since = now
                state.recorded = 0
            }
            guard state.recorded < Self.perMinute else {
                state.unrecorded += 1
                return nil
            }
            state.recorded += 1
            defer { state.unrecorded = 0 }
            return state.unrecorded
        }
    }
}

/// A POSIX ACL on the control socket that lets a second group connect (read and write), written
/// as the `system.posix_acl_access` attribute in the kernel's format: owner rw, owning group rw,
/// the extra group rw, mask rw, others nothing.
enum SocketACL {
    /// nil once set, else why it could not be.
    static func allow(group: gid_t, on path: String) -> String? {
        let undefined = UInt32.max
        let entries: [(tag: UInt16, permissions: UInt16, id: UInt32)] = [
            (0x01, 6, undefined), (0x04, 6, undefined), (0x08, 6, UInt32(group)), (0x10, 6, undefined), (0x20, 0, undefined),
        ]
        var bytes: [UInt8] = []
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        append(UInt32(2))
        for entry in entries {
            append(entry.tag)
            append(entry.permissions)
            append(entry.id)
        }
        // setxattr(2) from the C library (Glibc's module map leaves <sys/xattr.h> out).
        typealias SetXattr = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeRawPointer?, Int, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setxattr") else { return "setxattr is not available" }
        let setxattr = unsafeBitCast(symbol, to: SetXattr.self)
        let result = bytes.withUnsafeBytes { setxattr(path, "system.posix_acl_access", $0.baseAddress, $0.count, 0) }
        return result == 0 ? nil : PosixError.reason()
    }
}

/// Connections being served, and those closed unread since the last look.
final class ConnectionCount: Sendable {
    let open = Atomic<Int>(0)
    let shed = Atomic<Int>(0)
}

struct ControlServerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Who sent a request: their uid, and every group they are in.
struct Caller {
    let uid: uid_t
    let groups: Set<gid_t>
    let actor: String

    init(_ peer: PeerCredentials) {
        uid = peer.uid
        var groups: Set<gid_t> = [peer.gid]
        var name = "uid \(peer.uid)"
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        if getpwuid_r(peer.uid, &entry, &buffer, buffer.count, &found) == 0, found != nil {
            let user = String(cString: entry.pw_name)
            name += " (\(user))"
            var count: Int32 = 256
            var list = [gid_t](repeating: 0, count: 256)
            if getgrouplist(user, entry.pw_gid, &list, &count) >= 0 { groups.formUnion(list.prefix(Int(count))) }
        }
        self.groups = groups
        actor = name
    }

    static func groupName(_ gid: gid_t) -> String {
        guard let entry = getgrgid(gid), let name = entry.pointee.gr_name else { return String(gid) }
        return String(cString: name)
    }
}
