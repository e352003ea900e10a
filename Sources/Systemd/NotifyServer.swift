import CSystemd
import Foundation
import Glibc
import Posix
import Synchronization

/// The receiving end of the sd_notify protocol: a datagram socket that programs reach through
/// `NOTIFY_SOCKET`, each message delivered with the sender's PID (from the kernel's
/// SCM_CREDENTIALS, which a sender cannot forge). Owns its socket; `close()` ends it.
///
/// Anyone may write to it, so the work per sender is bounded at the edge, on the receiving
/// thread: each PID may have `limit` datagrams delivered (a burst, then a steady rate), and the
/// rest are shed unread; then `identify` names the sender or refuses it. A flood from one
/// process costs a `recv` per datagram, never a lookup, and never crowds out other senders.
public final class NotifyServer: @unchecked Sendable {
    /// One datagram: `KEY=value` lines, who sent it, and what `identify` called the sender.
    public struct Message: Sendable {
        public var pid: pid_t
        public var sender: String
        public var fields: [String: String]
    }

    /// How many datagrams one sender may have delivered: `burst` at once, then `perSecond`.
    public struct SenderLimit: Sendable {
        public var burst: Double
        public var perSecond: Double

        public init(burst: Double, perSecond: Double) {
            self.burst = burst
            self.perSecond = perSecond
        }
    }

    /// Datagrams not delivered since the last `takeCounts()`.
    public struct Counts: Sendable, Equatable {
        /// Over their sender's limit.
        public var shed = 0
        /// From senders `identify` refused.
        public var refused = 0
    }

    /// The socket's path.
    public let path: String
    /// What each sender may have delivered.
    public let limit: SenderLimit
    /// The messages, in the order they arrived.
    public let messages: AsyncStream<Message>
    private let socket: Socket
    private let closing = Atomic<Bool>(false)
    private let countsLock = NSLock()
    private var counts = Counts()

    /// Binds a socket at `path` (replacing a stale one) that anyone may write to. `identify`
    /// runs on the receiving thread for each datagram within its sender's limit: it names the
    /// sender (a unit), or returns nil to refuse the datagram.
    public init(
        path: String, limit: SenderLimit = SenderLimit(burst: 50, perSecond: 50),
        identify: @escaping @Sendable (pid_t) -> String? = { _ in "" }
    ) throws(SystemdError) {
        self.path = path
        self.limit = limit
        let socket: Socket
        do {
            socket = try Socket.bind(.unix(path), .datagram, mode: 0o666)
        } catch {
            throw SystemdError(call: error.call, errno: error.code)
        }
        socket.enable(SO_PASSCRED)
        self.socket = socket
        let (stream, continuation) = AsyncStream.makeStream(of: Message.self, bufferingPolicy: .bufferingNewest(4096))
        messages = stream
        let thread = Thread { [self] in
            // Up to 64 datagrams a system call: a flood costs far fewer of them than datagrams.
            let slot = 4096, batch = 64
            var buffer = [CChar](repeating: 0, count: slot * batch)
            var lengths = [Int](repeating: 0, count: batch)
            var pids = [Int32](repeating: 0, count: batch)
            var buckets = SenderBuckets(limit: limit)
            while true {
                let received = medic_recv_batch_with_pids(socket.descriptor, &buffer, UInt(slot), Int32(batch), &lengths, &pids)
                if closing.load(ordering: .acquiring) { break }
                if received < 0 {
                    if errno == EINTR { continue }
                    break
                }
                var dropped = Counts()
                defer {
                    if dropped != Counts() {
                        count { $0.shed += dropped.shed; $0.refused += dropped.refused }
                        // Under a flood, let datagrams gather so each system call takes a full
                        // batch, instead of waking for every one.
                        usleep(1000)
                    }
                }
                for index in 0..<Int(received) {
                    let pid = pids[index]
                    guard buckets.take(pid) else {
                        dropped.shed += 1
                        continue
                    }
                    guard let sender = identify(pid) else {
                        dropped.refused += 1
                        continue
                    }
                    let text = buffer.withUnsafeBufferPointer { all in
                        String(decoding: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(all)[index * slot..<index * slot + lengths[index]]), as: UTF8.self)
                    }
                    var fields: [String: String] = [:]
                    for line in text.split(separator: "\n") {
                        guard let eq = line.firstIndex(of: "=") else { continue }
                        fields[String(line[..<eq])] = String(line[line.index(after: eq)...])
                    }
                    continuation.yield(Message(pid: pid, sender: sender, fields: fields))
                }
            }
            // This thread closes it: the descriptor's number cannot be reused under its receive.
            socket.close()
            continuation.finish()
        }
        thread.name = "medic-notify"
        thread.start()
    }

    private func count(_ change: (inout Counts) -> Void) {
        countsLock.withLock { change(&counts) }
    }

    /// The datagrams shed and refused since the last call.
    public func takeCounts() -> Counts {
        countsLock.withLock {
            defer { counts = Counts() }
            return counts
        }
    }

    /// Stops receiving (the receiving thread wakes, closes the socket and ends the stream) and
    /// removes the socket's file.
    public func close() {
        closing.store(true, ordering: .releasing)
        socket.shutdown()
        unlink(path)
    }
}

/// A token bucket per sender PID, for the receiving thread alone.
private struct SenderBuckets {
    let limit: NotifyServer.SenderLimit
    private var buckets: [pid_t: (tokens: Double, at: UInt64)] = [:]

    init(limit: NotifyServer.SenderLimit) { self.limit = limit }

    /// Whether `pid` may have one more datagram delivered now.
    mutating func take(_ pid: pid_t) -> Bool {
        let now = DispatchTime.now().uptimeNanoseconds
        // Bounded: a crowd of PIDs beyond this starts every bucket afresh.
        if buckets.count > 4096, buckets[pid] == nil { buckets.removeAll(keepingCapacity: true) }
        var bucket = buckets[pid] ?? (limit.burst, now)
        bucket.tokens = min(limit.burst, bucket.tokens + Double(now - bucket.at) / 1e9 * limit.perSecond)
        bucket.at = now
        guard bucket.tokens >= 1 else {
            buckets[pid] = bucket
            return false
        }
        bucket.tokens -= 1
        buckets[pid] = bucket
        return true
    }
}
