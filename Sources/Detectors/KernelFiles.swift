import Glibc
import Synchronization

/// Small kernel files (cgroup and /proc) kept open from one sampling round to the next and read
/// again from the start with `pread`, which makes the kernel produce them afresh: a file then
/// costs one system call a round instead of an open (a path walk through the cgroup tree), a
/// read and a close. A file that was not read during a round is closed at its end (a process
/// that exited, a unit no longer watched); one whose cgroup went away fails its read and is
/// opened again by path.
public final class KernelFiles: Sendable {
    private struct State {
        var descriptors: [String: Int32] = [:]
        var readThisRound: Set<String> = []
    }

    private let state = Mutex(State())
    /// At most this many are kept open: a quarter of the soft limit of open files (medicd
    /// raises its own to the hard limit, at most 65,536), so that probes, sockets and exec
    /// steps always have room. Files beyond it are read by path each round.
    private let capacity: Int

    public init() {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        capacity = Int(min(limit.rlim_cur, 1 << 20)) / 4
    }

    deinit {
        state.withLock { for descriptor in $0.descriptors.values { close(descriptor) } }
    }

    /// The file's text now, or nil if it cannot be read.
    func read(_ path: String) -> String? {
        state.withLock { state in
            state.readThisRound.insert(path)
            if let descriptor = state.descriptors[path] {
                if let text = Self.readFromStart(descriptor) { return text }
                close(descriptor)
                state.descriptors[path] = nil
            }
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { return nil }
            let text = Self.readFromStart(descriptor)
            if text != nil, state.descriptors.count < capacity {
                state.descriptors[path] = descriptor
            } else {
                close(descriptor)
            }
            return text
        }
    }

    /// Ends a sampling round: closes the files it did not read.
    public func endRound() {
        state.withLock { state in
            for (path, descriptor) in state.descriptors where !state.readThisRound.contains(path) {
                close(descriptor)
                state.descriptors[path] = nil
            }
            state.readThisRound.removeAll(keepingCapacity: true)
        }
    }

    /// How many files are open now.
    public var openCount: Int { state.withLock { $0.descriptors.count } }

    /// The file's lines.
    func lines(_ path: String) -> [Substring] {
        read(path)?.split(separator: "\n") ?? []
    }

    /// The number a one-number file holds (memory.current, pids.current).
    func number(_ path: String) -> Double? {
        read(path).flatMap { Double($0.prefix { !$0.isWhitespace }) }
    }

    /// The value of `key` in a file of `key value` lines (cpu.stat, memory.events).
    func keyed(_ path: String, _ key: String) -> Double? {
        for line in lines(path) where line.hasPrefix(key + " ") {
            return Double(line.dropFirst(key.count + 1))
        }
        return nil
    }

    /// Reads a small file (up to 8 KiB) from its start. The kernel hands over such a file in
    /// one read: a short read is its end, without asking again for the end of file.
    static func readFromStart(_ descriptor: Int32) -> String? {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 8192) { buffer -> String? in
            var total = 0
            while total < buffer.count {
                let asked = buffer.count - total
                let n = pread(descriptor, buffer.baseAddress! + total, asked, off_t(total))
                if n < 0 { return nil }
                total += n
                if n < asked { break }
            }
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[0..<total]), as: UTF8.self)
        }
    }
}
