import Foundation
import Glibc
import Systemd

/// One unit's resource use at a moment.
public struct UnitSample: Sendable, Equatable {
    public var memoryBytes: Double?
    /// CPU time used so far, in seconds (a rate comes from two samples).
    public var cpuSeconds: Double?
    public var tasks: Double?
    public var fds: Double?
    /// The main process's soft limit of open files.
    public var fdLimit: Double?
    /// The unit's memory pressure (PSI `some avg10`, a fraction), where the kernel gives it.
    public var memoryPressure: Double?
    /// OOM kills in the unit's cgroup so far (cgroup v2 memory.events).
    public var oomKills: Double?
    /// Where each figure came from: `cgroup2`, `cgroup1`, `systemd`, `proc`.
    public var sources: [String: String] = [:]
}

/// Reads a unit's resource use from the kernel's own files: cgroup v2 (pure or hybrid), cgroup
/// v1 controllers, then systemd's accounting, then the unit's processes in /proc — whichever
/// exists first. Every root is a parameter, so tests read fixture trees.
public struct UnitSampler: Sendable {
    public var unifiedRoot: String
    public var v1Root: String
    public var procRoot: String

    /// `unifiedRoot`: where the unit's cgroup path (systemd's ControlGroup=) is found in the v2
    /// hierarchy (`/sys/fs/cgroup` on a pure v2 host, `/sys/fs/cgroup/unified` on a hybrid one, or
    /// a container's cgroup seen from outside).
    public init(unifiedRoot: String = UnitSampler.defaultUnifiedRoot, v1Root: String = "/sys/fs/cgroup", procRoot: String = "/proc") {
        self.unifiedRoot = unifiedRoot
        self.v1Root = v1Root
        self.procRoot = procRoot
    }

    /// `/sys/fs/cgroup/unified` on a hybrid host, else `/sys/fs/cgroup`.
    public static var defaultUnifiedRoot: String {
        FileManager.default.fileExists(atPath: "/sys/fs/cgroup/unified/cgroup.procs") ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup"
    }

    /// Samples a unit. Counting open files walks every process's fd directory: only with
    /// `countFiles` (for units with an fds limit).
    public func sample(controlGroup: String, systemd: UnitState? = nil, countFiles: Bool = true) -> UnitSample {
        var sample = UnitSample()
        let v2 = unifiedRoot + controlGroup
        // The unit's processes are read only when a figure needs them.
        let processes = ProcessList(path: v2 + "/cgroup.procs")
        let valid: (UInt64?) -> Double? = { $0.flatMap { $0 == UInt64.max ? nil : Double($0) } }

        if let bytes = readNumber(v2 + "/memory.current") {
            (sample.memoryBytes, sample.sources["memory"]) = (bytes, "cgroup2")
        } else if let bytes = readNumber(v1Root + "/memory" + controlGroup + "/memory.usage_in_bytes") {
            (sample.memoryBytes, sample.sources["memory"]) = (bytes, "cgroup1")
        } else if let bytes = valid(systemd?.memoryCurrent) {
            (sample.memoryBytes, sample.sources["memory"]) = (bytes, "systemd")
        } else if !processes.pids.isEmpty {
            let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
            let pages = processes.pids.compactMap { readLines("\(procRoot)/\($0)/statm").first?.split(separator: " ").dropFirst().first.flatMap { Double($0) } }
            (sample.memoryBytes, sample.sources["memory"]) = (pages.reduce(0, +) * pageSize, "proc")
        }

        if let text = readSmall(v2 + "/memory.pressure"), let avg10 = HostPressure.someAverage10(text) {
            sample.memoryPressure = avg10 / 100
        }
        sample.oomKills = readKeyed(v2 + "/memory.events", "oom_kill")

        if let usec = readKeyed(v2 + "/cpu.stat", "usage_usec") {
            (sample.cpuSeconds, sample.sources["cpu"]) = (usec / 1e6, "cgroup2")
        } else if let ns = readNumber(v1Root + "/cpuacct" + controlGroup + "/cpuacct.usage") {
            (sample.cpuSeconds, sample.sources["cpu"]) = (ns / 1e9, "cgroup1")
        } else if let ns = valid(systemd?.cpuUsageNSec) {
            (sample.cpuSeconds, sample.sources["cpu"]) = (ns / 1e9, "systemd")
        } else if !processes.pids.isEmpty {
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            let total = processes.pids.compactMap { cpuTicks(of: $0) }.reduce(0, +)
            (sample.cpuSeconds, sample.sources["cpu"]) = (total / ticks, "proc")
        }

        if let count = readNumber(v2 + "/pids.current") {
            (sample.tasks, sample.sources["tasks"]) = (count, "cgroup2")
        } else if let count = valid(systemd?.tasksCurrent) {
            (sample.tasks, sample.sources["tasks"]) = (count, "systemd")
        } else if !processes.pids.isEmpty {
            let threads = processes.pids.map { countEntries("\(procRoot)/\($0)/task") ?? 1 }
            (sample.tasks, sample.sources["tasks"]) = (Double(threads.reduce(0, +)), "proc")
        }

        if countFiles, !processes.pids.isEmpty {
            sample.fds = Double(processes.pids.map { countEntries("\(procRoot)/\($0)/fd") ?? 0 }.reduce(0, +))
            sample.fdLimit = openFilesLimit(of: processes.pids[0])
            sample.sources["fds"] = "proc"
        }
        return sample
    }

    private func cpuTicks(of pid: pid_t) -> Double? {
        // Fields after the command name (which may hold spaces): utime is the 14th, stime the 15th.
        guard let line = readLines("\(procRoot)/\(pid)/stat").first, let close = line.lastIndex(of: ")") else { return nil }
        let fields = line[line.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return user + system
    }

    private func openFilesLimit(of pid: pid_t) -> Double? {
        guard let line = readLines("\(procRoot)/\(pid)/limits").first(where: { $0.hasPrefix("Max open files") }) else { return nil }
        return line.dropFirst("Max open files".count).split(separator: " ").first.flatMap { Double($0) }
    }
}

/// Reads a small kernel file with plain open/read/close (the cgroup and /proc files are a few
/// bytes; Foundation's file reading costs more than the read itself).
func readSmall(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 8192) { buffer -> String? in
        var total = 0
        while total < buffer.count {
            let n = read(fd, buffer.baseAddress! + total, buffer.count - total)
            if n <= 0 { break }
            total += n
        }
        return String(decoding: UnsafeBufferPointer(rebasing: buffer[0..<total]), as: UTF8.self)
    }
}

/// A cgroup's processes, read on first use.
final class ProcessList {
    private let path: String
    lazy var pids: [pid_t] = readLines(path).compactMap { pid_t($0) }

    init(path: String) { self.path = path }
}

func readLines(_ path: String) -> [Substring] {
    guard let text = readSmall(path) else { return [] }
    return text.split(separator: "\n")
}

func readNumber(_ path: String) -> Double? {
    guard let text = readSmall(path) else { return nil }
    return Double(text.prefix { !$0.isWhitespace })
}

/// `key value` lines (cpu.stat, memory.stat).
func readKeyed(_ path: String, _ key: String) -> Double? {
    for line in readLines(path) where line.hasPrefix(key + " ") {
        return Double(line.dropFirst(key.count + 1))
    }
    return nil
}

/// How many entries a directory has (open file descriptors, threads), without `.` and `..`.
func countEntries(_ path: String) -> Int? {
    guard let dir = opendir(path) else { return nil }
    defer { closedir(dir) }
    var count = 0
    while let entry = readdir(dir) {
        let name = entry.pointee.d_name
        if name.0 == 46, name.1 == 0 || (name.1 == 46 && name.2 == 0) { continue }
        count += 1
    }
    return count
}
