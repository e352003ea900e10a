import Foundation
import Glibc

/// medic-compare: runs Medic beside the tools operators use today on real systemd test hosts
/// and prints one table. `--quick` is a small smoke run. Exits non-zero if a contender failed to
/// do its job.
@main
struct Compare {
    static func main() {
        let quick = CommandLine.arguments.contains("--quick")
        let products = ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]) as NSString
        let medicd = products.deletingLastPathComponent + "/medicd"
        print(Machine.description)
        do {
            let agent = AgentCost(medicd: medicd, unitCounts: quick ? [10, 100] : [10, 100, 1000], idle: .seconds(quick ? 6 : 30))
            let results = try agent.run()
            print("")
            print("medicd's cost, watching N idle units (each a target with a memory limit; sampled every 5 s, the default):")
            print(Table(header: ["units", "exec → READY=1", "resident memory", "of it anonymous", "CPU (share of one core)"], rows: results.map {
                [String($0.units), String(format: "%.0f ms", $0.startup.milliseconds), String(format: "%.1f MiB", $0.residentMiB),
                 String(format: "%.1f MiB", $0.anonymousMiB), String(format: "%.3f%%", $0.cpuShare * 100)]
            }).render())
        } catch {
            FileHandle.standardError.write(Data("medic-compare: \(error)\n".utf8))
            exit(1)
        }
    }
}

/// The machine the figures come from.
enum Machine {
    static var description: String {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        var name = utsname()
        uname(&name)
        let kernel = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return "machine: \(ProcessInfo.processInfo.activeProcessorCount) cores (\(cpu)), \(ProcessInfo.processInfo.physicalMemory >> 20) MiB, Linux \(kernel)"
    }
}

/// A plain-text table, columns padded to their widest cell.
struct Table {
    let header: [String]
    let rows: [[String]]

    func render() -> String {
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        let line = { (cells: [String]) in
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
