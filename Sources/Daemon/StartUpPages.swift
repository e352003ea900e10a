import Glibc
import Posix

/// Lets go of the file pages that start-up mapped and idle does not use.
///
/// Start-up runs code that idle never runs again (reading the configuration and every target,
/// the first sampling round), in medicd's binary and in the shared libraries (libc, libstdc++,
/// SQLite, libsystemd), and the kernel maps each page it touched together with the neighbours
/// that are in the page cache (fault-around, 64 KiB). Those pages stay mapped, and counted as
/// medicd's resident memory, for as long as it runs. `unmap` drops medicd's mappings of the file
/// pages it has not changed: code, and read-only data no relocation wrote. The pages stay in the
/// page cache, shared with every process that maps them; the ones idle uses are mapped again at
/// their next use (a minor fault, no disk read), and an incident maps what it needs from the
/// cache the same way. Pages a process wrote (relocated pointers, globals, the heap) are never
/// touched: only private read-only mappings with no page of their own are.
public enum StartUpPages {
    /// One mapping of `/proc/self/smaps` that can be let go of.
    struct Mapping {
        let pages: Range<UInt>
        let path: String
    }

    /// Drops the mappings of clean file pages; returns how many bytes of them were resident.
    @discardableResult
    public static func unmap() -> Int {
        guard let smaps = WholeFile.text("/proc/self/smaps") else { return 0 }
        var released = 0
        for (mapping, resident) in clean(in: smaps) {
            let start = UnsafeMutableRawPointer(bitPattern: mapping.pages.lowerBound)
            if madvise(start, mapping.pages.count, MADV_DONTNEED) == 0 { released += resident }
        }
        return released
    }

    /// The private, read-only, file-backed mappings with no page of their own (nothing in them
    /// was written: no relocation, no copy on write) and not locked, each with its resident
    /// bytes, from the text of `/proc/PID/smaps`.
    static func clean(in smaps: String) -> [(Mapping, Int)] {
        var found: [(Mapping, Int)] = []
        var candidate: Mapping?
        var resident = 0
        var anonymous = 0
        for line in smaps.split(separator: "\n", omittingEmptySubsequences: true) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.hasSuffix(":") {
                let kibibytes = fields.count > 1 ? Int(fields[1]) ?? 0 : 0
                switch first {
                case "Rss:": resident = kibibytes * 1024
                case "Anonymous:": anonymous = kibibytes
                case "VmFlags:":
                    if let mapping = candidate, anonymous == 0, resident > 0, !fields.contains("lo") {
                        found.append((mapping, resident))
                    }
                    candidate = nil
                default: break
                }
                continue
            }
            // A mapping's first line: range, permissions, offset, device, inode, path.
            candidate = nil
            resident = 0
            anonymous = 0
            guard fields.count >= 6, fields[1] == "r-xp" || fields[1] == "r--p", fields[4] != "0",
                  fields[5].hasPrefix("/") else { continue }
            let bounds = first.split(separator: "-")
            guard bounds.count == 2, let low = UInt(bounds[0], radix: 16), let high = UInt(bounds[1], radix: 16), low < high else { continue }
            candidate = Mapping(pages: low..<high, path: fields[5...].joined(separator: " "))
        }
        return found
    }
}
