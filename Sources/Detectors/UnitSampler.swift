import Foundation
import Glibc
import MedicCore
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
    /// How long some of the unit's tasks stalled on memory, CPU and IO so far, in seconds (PSI
    /// `some total`; a share of time comes from two samples), where the kernel gives it.
    public var stalls: [ResourceLimit.Pressure: Double] = [:]
    /// The kernel's own 10-second averages of those (PSI `some avg10`, a fraction).
    public var pressures: [ResourceLimit.Pressure: Double] = [:]
    /// OOM kills in the unit's cgroup so far (cgroup v2 memory.events).
    public var oomKills: Double?
    /// Where each figure came from: `cgroup2`, `cgroup1`, `systemd`, `proc`.
    public var sources: [String: String] = [:]

    /// This sample, with the figures it lacks taken from `other`.
    public func filled(from other: UnitSample) -> UnitSample {
        var sample = self
        sample.memoryBytes = memoryBytes ?? other.memoryBytes
        sample.cpuSeconds = cpuSeconds ?? other.cpuSeconds
        sample.tasks = tasks ?? other.tasks
        sample.fds = fds ?? other.fds
        sample.fdLimit = fdLimit ?? other.fdLimit
        sample.stalls.merge(other.stalls) { mine, _ in mine }
        sample.pressures.merge(other.pressures) { mine, _ in mine }
        sample.oomKills = oomKills ?? other.oomKills
        sample.sources.merge(other.sources) { mine, _ in mine }
        return sample
    }
}

/// Reads a unit's resource use from the kernel's own files: cgroup v2 (pure or hybrid), cgroup
/// v1 controllers, then systemd's accounting, then the unit's processes in /proc — whichever
/// exists first. Every root is a parameter, so tests read fixture trees.
public struct UnitSampler: Sendable {
    public let unifiedRoot: String
    public let v1Root: String
    public let procRoot: String
    /// Hierarchies without a memory controller are not asked, unit after unit, round after round.
    /// Whether cgroup2 has the memory controller (and so `memory.current` and `memory.events`).
    let unifiedMemory: Bool
    private let v1Memory: Bool
    /// The files sampled, kept open between rounds; call `endRound()` after each round.
    public let files = KernelFiles()

    /// `unifiedRoot`: where the unit's cgroup path (systemd's ControlGroup=) is found in the v2
    /// hierarchy (`/sys/fs/cgroup` on a pure v2 host, `/sys/fs/cgroup/unified` on a hybrid one, or
    /// a container's cgroup seen from outside).
    public init(unifiedRoot: String = UnitSampler.defaultUnifiedRoot, v1Root: String = "/sys/fs/cgroup", procRoot: String = "/proc") {
        self.unifiedRoot = unifiedRoot
        self.v1Root = v1Root
        self.procRoot = procRoot
        // A cgroup2 root lists its controllers; where it does not say, it is asked.
        let controllers = readSmall(unifiedRoot + "/cgroup.controllers")
        unifiedMemory = controllers.map { $0.split(whereSeparator: \.isWhitespace).contains("memory") } ?? true
        v1Memory = FileManager.default.fileExists(atPath: v1Root + "/memory")
    }

    /// `/sys/fs/cgroup/unified` on a hybrid host, else `/sys/fs/cgroup`.
    public static var defaultUnifiedRoot: String {
        FileManager.default.fileExists(atPath: "/sys/fs/cgroup/unified/cgroup.procs") ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup"
    }

    /// Which figures a sample reads. A watcher asks only for what its limits compare, and for
    /// everything once one fires, so an idle unit costs one or two small reads a round.
    public struct Figures: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }

        public static let memory = Figures(rawValue: 1)
        public static let cpu = Figures(rawValue: 2)
        public static let tasks = Figures(rawValue: 4)
        /// Open files: walks every process's fd directory.
        public static let fds = Figures(rawValue: 8)
        /// Memory, CPU and IO pressure, and OOM kills.
        public static let pressure = Figures(rawValue: 16)
        public static let all: Figures = [.memory, .cpu, .tasks, .fds, .pressure]

        /// The figure a limit on `resource` compares.
        public init(_ resource: ResourceLimit.Resource) {
            switch resource {
            case .memory: self = .memory
            case .cpu: self = .cpu
            case .tasks: self = .tasks
            case .fds: self = .fds
            case .disk: self = []
            case .pressure: self = .pressure
            }
        }
    }

    /// Samples a unit's `figures`.
    public func sample(controlGroup: String, systemd: UnitState? = nil, figures: Figures = .all) -> UnitSample {
        var sample = UnitSample()
        let v2 = unifiedRoot + controlGroup
        // The unit's processes are read only when a figure needs them.
        let processes = ProcessList(path: v2 + "/cgroup.procs", files: files)
        if figures.contains(.memory), let (bytes, source) = memory(controlGroup, systemd: systemd, processes: processes) {
            (sample.memoryBytes, sample.sources["memory"]) = (bytes, source)
        }
        if figures.contains(.pressure) {
            for pressure in ResourceLimit.Pressure.allCases {
                guard let text = files.read(v2 + "/" + pressure.name) else { continue }
                sample.stalls[pressure] = HostPressure.someTotal(text)
                sample.pressures[pressure] = HostPressure.someAverage10(text).map { $0 / 100 }
            }
            sample.oomKills = files.keyed(v2 + "/memory.events", "oom_kill")
        }
        if figures.contains(.cpu), let (seconds, source) = cpu(controlGroup, systemd: systemd, processes: processes) {
            (sample.cpuSeconds, sample.sources["cpu"]) = (seconds, source)
        }
        if figures.contains(.tasks), let (count, source) = tasks(controlGroup, systemd: systemd, processes: processes) {
            (sample.tasks, sample.sources["tasks"]) = (count, source)
        }
        if figures.contains(.fds), !processes.pids.isEmpty {
            sample.fds = Double(processes.pids.map { countEntries("\(procRoot)/\($0)/fd") ?? 0 }.reduce(0, +))
            sample.fdLimit = openFilesLimit(of: processes.pids[0])
            sample.sources["fds"] = "proc"
        }
        return sample
    }

    /// Bytes, and where they came from.
    private func memory(_ controlGroup: String, systemd: UnitState?, processes: ProcessList) -> (Double, String)? {
        if unifiedMemory, let bytes = files.number(unifiedRoot + controlGroup + "/memory.current") { return (bytes, "cgroup2") }
        if v1Memory, let bytes = files.number(v1Root + "/memory" + controlGroup + "/memory.usage_in_bytes") { return (bytes, "cgroup1") }
        if let bytes = Self.valid(systemd?.memoryCurrent) { return (bytes, "systemd") }
        guard !processes.pids.isEmpty else { return nil }
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        // statm's second field: resident pages.
        let pages = processes.pids.reduce(Int64(0)) { $0 + (files.field(procRoot + "/" + String($1) + "/statm", 1) ?? 0) }
        return (Double(pages) * pageSize, "proc")
    }

    /// CPU seconds used so far, and where they came from.
    private func cpu(_ controlGroup: String, systemd: UnitState?, processes: ProcessList) -> (Double, String)? {
        if let usec = files.keyed(unifiedRoot + controlGroup + "/cpu.stat", "usage_usec") { return (usec / 1e6, "cgroup2") }
        if let ns = files.number(v1Root + "/cpuacct" + controlGroup + "/cpuacct.usage") { return (ns / 1e9, "cgroup1") }
        if let ns = Self.valid(systemd?.cpuUsageNSec) { return (ns / 1e9, "systemd") }
        guard !processes.pids.isEmpty else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return (processes.pids.compactMap { cpuTicks(of: $0) }.reduce(0, +) / ticks, "proc")
    }

    /// Tasks (threads), and where the count came from.
    private func tasks(_ controlGroup: String, systemd: UnitState?, processes: ProcessList) -> (Double, String)? {
        if let count = files.number(unifiedRoot + controlGroup + "/pids.current") { return (count, "cgroup2") }
        if let count = Self.valid(systemd?.tasksCurrent) { return (count, "systemd") }
        guard !processes.pids.isEmpty else { return nil }
        return (Double(processes.pids.map { countEntries("\(procRoot)/\($0)/task") ?? 1 }.reduce(0, +)), "proc")
    }

    /// systemd's accounting figures, where it has one (UINT64_MAX means none).
    private static func valid(_ value: UInt64?) -> Double? {
        value.flatMap { $0 == UInt64.max ? nil : Double($0) }
    }

    private func cpuTicks(of pid: pid_t) -> Double? {
        // Fields after the command name (which may hold spaces): utime is the 14th, stime the 15th.
        guard let line = files.lines("\(procRoot)/\(pid)/stat").first, let close = line.lastIndex(of: ")") else { return nil }
        let fields = line[line.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return user + system
    }

    private func openFilesLimit(of pid: pid_t) -> Double? {
        guard let line = readLines("\(procRoot)/\(pid)/limits").first(where: { $0.hasPrefix("Max open files") }) else { return nil }
        return line.dropFirst("Max open files".count).split(separator: " ").first.flatMap { Double($0) }
    }
}

/// Reads a kernel file with plain open/pread/close: one `pread` for the usual few lines, read on
/// to its end when longer (`KernelFiles.readFromStart`). Foundation's file reading costs more
/// than the read itself, and stops after the first page of a file of size 0.
func readSmall(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    return KernelFiles.readFromStart(fd) { String(decoding: $0, as: UTF8.self) }
}

/// A cgroup's processes, read on first use.
final class ProcessList {
    private let path: String
    private let files: KernelFiles
    lazy var pids: [pid_t] = files.numbers(path).compactMap { pid_t(exactly: $0) }

    init(path: String, files: KernelFiles) {
        self.path = path
        self.files = files
    }
}

func readLines(_ path: String) -> [Substring] {
    guard let text = readSmall(path) else { return [] }
    return text.split(separator: "\n")
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
