import Foundation
import Glibc
import Posix

/// What a running process costs, read from /proc: resident memory, CPU time, descriptors.
public struct ProcessCost: Sendable {
    /// Resident set size (VmRSS), in MiB.
    public var residentMiB: Double
    /// The part of it that is the process's own (RssAnon: heap, stacks), not pages of its
    /// binary and libraries, which are shared and can be dropped and read again.
    public var anonymousMiB: Double
    /// Proportional set size (smaps_rollup's Pss): each page shared with other processes counted
    /// as its share, in MiB; nil where the kernel does not say.
    public var proportionalMiB: Double?
    /// User plus system CPU time so far, in seconds.
    public var cpuSeconds: Double
    /// File descriptors open.
    public var descriptors: Int

    /// Reads the process's cost now; nil if it is gone.
    public init?(pid: pid_t) {
        guard let status = WholeFile.text("/proc/\(pid)/status"),
              let stat = WholeFile.text("/proc/\(pid)/stat"),
              let close = stat.lastIndex(of: ")") else { return nil }
        // `Field:   123 kB` lines of /proc's status and smaps_rollup.
        func kilobytes(_ field: String, in text: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(field + ":") }?.split(separator: " ").dropFirst().first.flatMap { Double($0) }
        }
        // Fields after the command name: state is field 3, utime 14 and stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        residentMiB = (kilobytes("VmRSS", in: status) ?? 0) / 1024
        anonymousMiB = (kilobytes("RssAnon", in: status) ?? 0) / 1024
        let rollup = WholeFile.text("/proc/\(pid)/smaps_rollup") ?? ""
        proportionalMiB = kilobytes("Pss", in: rollup).map { $0 / 1024 }
        cpuSeconds = (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
        descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
    }
}
