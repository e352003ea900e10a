import Foundation
import Glibc
import MedicCore
import Posix
import Systemd

/// Keeps the evidence of an incident before anything destructive runs: the unit's last journal
/// lines, its properties (states, result, restarts, exit status, resources), its pool's state,
/// and the host's load, memory and disk. Bounded: lines are cut at 512 bytes and the bundle at
/// 64 KiB. It lands in the step's result record, where `medic report` shows it.
struct CollectAction {
    let manager: SystemdManager
    let pool: LoadBalancerPool
    /// The journal to read (a directory), or nil for this host's own.
    let journalDirectory: String?

    static let lineLimit = 512
    static let bundleLimit = 65_536

    func run(journalLines: Int, context: StepContext) async -> StepOutcome {
        var evidence: [String: String] = [:]
        var missing: [String] = []
        let unit = context.target == TargetSelector.hostName ? nil : context.target
        if let unit {
            do {
                let reader = try journalDirectory.map { try JournalReader(directory: $0) } ?? JournalReader()
                let entries = try reader.recentEntries(unit: unit, limit: journalLines)
                evidence["evidence.journal"] = entries.map { entry in
                    let time = Timestamp(wallMicroseconds: Int64(entry.realtimeUSec), monotonicNanoseconds: 0).iso8601
                    return "\(time) \(String(entry.message.utf8.prefix(Self.lineLimit)) ?? "")"
                }.joined(separator: "\n")
            } catch {
                missing.append("journal: \(error)")
            }
            do {
                let state = try await manager.state(of: unit)
                var lines = ["ActiveState=\(state.activeState ?? "?")", "SubState=\(state.subState ?? "?")", "Result=\(state.result ?? "?")",
                             "NRestarts=\(state.nRestarts.map(String.init) ?? "?")", "MainPID=\(state.mainPID.map(String.init) ?? "?")",
                             "ExecMainCode=\(state.execMainCode.map(String.init) ?? "?")", "ExecMainStatus=\(state.execMainStatus.map(String.init) ?? "?")"]
                if let memory = state.memoryCurrent, memory < UInt64.max { lines.append("MemoryCurrent=\(Quantity.formatSize(Double(memory)))") }
                if let cpu = state.cpuUsageNSec, cpu < UInt64.max { lines.append("CPUUsage=\(DurationText.format(.nanoseconds(Int64(cpu))))") }
                if let tasks = state.tasksCurrent, tasks < UInt64.max { lines.append("TasksCurrent=\(tasks)") }
                if let status = state.statusText, !status.isEmpty { lines.append("StatusText=\(status)") }
                evidence["evidence.unit"] = lines.joined(separator: "\n")
            } catch {
                missing.append("unit properties: \(error)")
            }
        }
        if let member = context.pool {
            do {
                evidence["evidence.pool"] = try await pool.servers(of: member).map(\.summary).joined(separator: "\n")
            } catch {
                missing.append("pool: \(error)")
            }
        }
        evidence["evidence.host"] = Self.hostFigures()
        if !missing.isEmpty { evidence["evidence.missing"] = missing.joined(separator: "\n") }
        Self.bound(&evidence)
        let size = evidence.values.reduce(0) { $0 + $1.utf8.count }
        let lines = evidence["evidence.journal"].map { $0.isEmpty ? 0 : $0.split(separator: "\n").count } ?? 0
        return .success("kept \(lines) journal lines, the unit's properties, the pool and the host's figures (\(Quantity.formatSize(Double(size))))", evidence)
    }

    /// Load averages, memory and the root file system's space.
    static func hostFigures() -> String {
        var lines: [String] = []
        if let load = WholeFile.text("/proc/loadavg") {
            lines.append("load: " + load.split(separator: " ").prefix(3).joined(separator: " "))
        }
        if let meminfo = WholeFile.text("/proc/meminfo") {
            let wanted = ["MemTotal", "MemAvailable", "SwapTotal", "SwapFree"]
            for line in meminfo.split(separator: "\n") where wanted.contains(where: { line.hasPrefix($0 + ":") }) {
                lines.append(line.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " "))
            }
        }
        var fs = statvfs()
        if statvfs("/", &fs) == 0 {
            let total = Double(fs.f_blocks) * Double(fs.f_frsize)
            let free = Double(fs.f_bavail) * Double(fs.f_frsize)
            lines.append("disk /: \(Quantity.formatSize(free)) free of \(Quantity.formatSize(total))")
        }
        return lines.joined(separator: "\n")
    }

    /// Cuts the journal (oldest lines first) until the bundle fits.
    static func bound(_ evidence: inout [String: String]) {
        var size: Int { evidence.values.reduce(0) { $0 + $1.utf8.count } }
        while size > bundleLimit, var journal = evidence["evidence.journal"], let newline = journal.firstIndex(of: "\n") {
            journal.removeSubrange(...newline)
            evidence["evidence.journal"] = journal
        }
    }
}
