import Foundation
import Glibc
import MedicCore

/// The host's resource use at a moment, from /proc and statvfs.
public struct HostSample: Sendable, Equatable {
    public var memoryTotal: Double?
    public var memoryAvailable: Double?
    /// Busy and total jiffies of all CPUs since boot (a rate comes from two samples).
    public var cpuBusy: Double?
    public var cpuTotal: Double?
    public var fileHandles: Double?
    public var fileHandlesMax: Double?
    /// How long some tasks stalled on memory, CPU and IO so far, in seconds (PSI `some total`
    /// of /proc/pressure).
    public var stalls: [ResourceLimit.Pressure: Double] = [:]
    /// When it was taken.
    public var taken = ContinuousClock.now
    /// Mount point → used share of blocks and of inodes.
    public var disks: [String: (blocks: Double, inodes: Double)] = [:]

    public static func == (a: HostSample, b: HostSample) -> Bool {
        a.memoryTotal == b.memoryTotal && a.memoryAvailable == b.memoryAvailable && a.cpuBusy == b.cpuBusy
            && a.fileHandles == b.fileHandles && a.disks.keys == b.disks.keys
    }
}

/// Reads the host's memory, CPU, system-wide file handles and the mounts asked for.
public struct HostSampler: Sendable {
    public var procRoot: String

    public init(procRoot: String = "/proc") { self.procRoot = procRoot }

    /// Samples the host; its pressure files only if `pressures` (a host limit compares them).
    public func sample(mounts: [String], pressures: Bool = false) -> HostSample {
        var sample = HostSample()
        for line in readLines(procRoot + "/meminfo") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, let kib = Double(parts[1]) else { continue }
            if parts[0] == "MemTotal:" { sample.memoryTotal = kib * 1024 }
            if parts[0] == "MemAvailable:" { sample.memoryAvailable = kib * 1024 }
        }
        if let cpu = readLines(procRoot + "/stat").first(where: { $0.hasPrefix("cpu ") }) {
            let ticks = cpu.split(separator: " ").dropFirst().compactMap { Double($0) }
            if ticks.count >= 5 {
                let idle = ticks[3] + ticks[4]
                sample.cpuTotal = ticks.prefix(8).reduce(0, +)
                sample.cpuBusy = sample.cpuTotal! - idle
            }
        }
        if let line = readLines(procRoot + "/sys/fs/file-nr").first {
            let parts = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).compactMap { Double($0) }
            if parts.count == 3 { (sample.fileHandles, sample.fileHandlesMax) = (parts[0] - parts[1], parts[2]) }
        }
        for pressure in ResourceLimit.Pressure.allCases where pressures {
            if let text = readSmall("\(procRoot)/pressure/\(pressure.rawValue)"), let total = HostPressure.someTotal(text) {
                sample.stalls[pressure] = total
            }
        }
        for mount in mounts {
            var stats = statvfs()
            guard statvfs(mount, &stats) == 0, stats.f_blocks > 0 else { continue }
            let blocks = 1 - Double(stats.f_bavail) / Double(stats.f_blocks)
            let inodes = stats.f_files > 0 ? 1 - Double(stats.f_favail) / Double(stats.f_files) : 0
            sample.disks[mount] = (blocks, inodes)
        }
        return sample
    }
}
