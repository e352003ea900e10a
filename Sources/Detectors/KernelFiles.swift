import Glibc
import Posix
import Synchronization

/// Small kernel files (cgroup and /proc) kept open from one sampling round to the next and read
/// again from the start with `pread`, which makes the kernel produce them afresh: a file then
/// costs one system call a round instead of an open (a path walk through the cgroup tree), a
/// read and a close. A file that was not read during a round is closed at its end (a process
/// that exited, a unit no longer watched); one whose cgroup went away fails its read and is
/// opened again by path.
public final class KernelFiles: Sendable {
    /// An open file, and the round it was last read in.
    private struct Entry {
        var descriptor: Int32
        var round: UInt64
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var round: UInt64 = 0
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
        state.withLock { for entry in $0.entries.values { close(entry.descriptor) } }
    }

    /// Hands the file's bytes now to `body`, or returns nil if it cannot be read. One lookup of
    /// the path and one `pread` for a file already open.
    func withContents<R: Sendable>(_ path: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        state.withLock { state -> R? in
            let round = state.round
            if let index = state.entries.index(forKey: path) {
                state.entries.values[index].round = round
                if let result = Self.readFromStart(state.entries.values[index].descriptor, body) { return result }
                close(state.entries.values[index].descriptor)
                state.entries.remove(at: index)
            }
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { return nil }
            let result = Self.readFromStart(descriptor, body)
            if result != nil, state.entries.count < capacity {
                state.entries[path] = Entry(descriptor: descriptor, round: round)
            } else {
                close(descriptor)
            }
            return result
        }
    }

    /// The file's text now, or nil if it cannot be read.
    func read(_ path: String) -> String? {
        withContents(path) { String(decoding: $0, as: UTF8.self) }
    }

    /// Ends a sampling round: closes the files it did not read.
    public func endRound() {
        state.withLock { state in
            let round = state.round
            defer { state.round += 1 }
            // Rebuilt only when a file is to be closed: most rounds read every file again.
            guard state.entries.values.contains(where: { $0.round != round }) else { return }
            state.entries = state.entries.filter { _, entry in
                if entry.round == round { return true }
                close(entry.descriptor)
                return false
            }
        }
    }

    /// How many files are open now.
    public var openCount: Int { state.withLock { $0.entries.count } }

    /// The file's lines.
    func lines(_ path: String) -> [Substring] {
        read(path)?.split(separator: "\n") ?? []
    }

    /// The number a one-number file holds (memory.current, pids.current).
    func number(_ path: String) -> Double? {
        field(path, 0).map(Double.init)
    }

    /// Every number of a file of one number a line (cgroup.procs).
    func numbers(_ path: String) -> [Int64] {
        withContents(path) { bytes in
            var numbers: [Int64] = []
            var value: Int64 = 0
            var inNumber = false
            for byte in bytes {
                if byte >= 48, byte <= 57 {
                    value = value &* 10 &+ Int64(byte - 48)
                    inNumber = true
                } else if inNumber {
                    numbers.append(value)
                    (value, inNumber) = (0, false)
                }
            }
            if inNumber { numbers.append(value) }
            return numbers
        } ?? []
    }

    /// The `field`th (from 0) space-separated whole number of the file's first line
    /// (`/proc/PID/statm`).
    func field(_ path: String, _ field: Int) -> Int64? {
        withContents(path) { Self.decimals($0, field: field) } ?? nil
    }

    /// The value of `key` in a file of `key value` lines (cpu.stat, memory.events).
    func keyed(_ path: String, _ key: String) -> Double? {
        for line in lines(path) where line.hasPrefix(key + " ") {
            return Double(line.dropFirst(key.count + 1))
        }
        return nil
    }

    /// The `field`th whole number of the first line, fields separated by spaces; nil if the
    /// line has fewer, or the field is not a whole number.
    static func decimals(_ bytes: UnsafeBufferPointer<UInt8>, field: Int) -> Int64? {
        var index = 0
        var current = 0
        while index < bytes.count, bytes[index] != 10 {
            if bytes[index] == 32 {
                current += 1
                index += 1
                continue
            }
            guard current == field else {
                index += 1
                continue
            }
            var value: Int64 = 0
            var digits = 0
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                value = value &* 10 &+ Int64(bytes[index] - 48)
                digits += 1
                index += 1
            }
            let ends = index == bytes.count || bytes[index] == 32 || bytes[index] == 10
            return digits > 0 && ends ? value : nil
        }
        return nil
    }

    /// A read shorter than this is the whole file. The kernel makes these files about a page
    /// at a time (seq_file) and ends a read short of the page only when its next line would
    /// not fit; the lines of the files read here (cgroup.procs, statm, memory.*, cpu.stat,
    /// pressure) are far shorter than half a page.
    static let wholeBelow = 2048

    /// Reads a file from its start and hands its bytes to `body`. Most are a few lines, whole
    /// in one `pread` into the stack; a longer one (the `cgroup.procs` of a unit with hundreds
    /// of processes) is read on to its end.
    static func readFromStart<R>(_ descriptor: Int32, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        var failed = false
        let whole: R? = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4096) { buffer in
            let n = pread(descriptor, buffer.baseAddress!, buffer.count, 0)
            guard n >= 0 else {
                failed = true
                return nil
            }
            return n < wholeBelow ? body(UnsafeBufferPointer(rebasing: buffer[0..<n])) : nil
        }
        if let whole { return whole }
        guard !failed, lseek(descriptor, 0, SEEK_SET) == 0, let bytes = try? WholeFile.bytes(of: descriptor) else { return nil }
        return bytes.withUnsafeBufferPointer(body)
    }
}
