import Glibc
import Posix

/// Lets go of the file pages that start-up, or a rare job since, mapped and idle does not use.
///
/// Start-up runs code that idle never runs again (reading the configuration and every target,
/// the first sampling round), in medicd's binary and in the shared libraries (libc, libstdc++,
/// SQLite, libsystemd), and the kernel maps each page it touched together with the neighbours
/// that are in the page cache (fault-around, 64 KiB). Those pages stay mapped, and counted as
/// medicd's resident memory, for as long as it runs; so do the pages of the jobs that run once
/// an hour or when asked (pruning the audit log: 2 MiB; a reload), so they call it too.
///
/// `unmap` drops medicd's mappings of the file pages it has not changed: code, read-only data
/// no relocation wrote, and the unchanged pages of its constants where its link made them
/// writable (`BinaryPages.writableConstants`, each page looked up in `/proc/self/pagemap`
/// first). Pages a process wrote (relocated pointers, globals, the heap) are never touched.
/// Every page stays in the page cache, and the ones idle uses are mapped again at their next
/// use (a minor fault, with the cached neighbours around it). Dropping medicd's own binary from
/// the cache here as well kept 0.4–0.9 MiB of those neighbours unmapped, but then the first
/// incident after each letting go (the settle, and every hourly pruning: in a quiet fleet,
/// nearly every incident) read its code and constants from the disk: serving again 40–68 ms
/// after the crash instead of 16–26 ms (scenario 1's first crash after the settle, several
/// runs each way; the crashes after it 15–25 ms either way).
public enum ColdPages {
    /// One mapping of `/proc/self/smaps` that can be let go of.
    struct Mapping {
        let pages: Range<UInt>
        let path: String
    }

    /// Drops the mappings of clean file pages; returns how many bytes of them were resident.
    /// Never inlined: `scripts/link-order` cuts its profile of idle where this returns.
    @discardableResult @inline(never)
    public static func unmap() -> Int {
        guard let smaps = WholeFile.text("/proc/self/smaps") else { return 0 }
        var released = 0
        for (mapping, resident) in clean(in: smaps) {
            let start = UnsafeMutableRawPointer(bitPattern: mapping.pages.lowerBound)
            if madvise(start, mapping.pages.count, MADV_DONTNEED) == 0 { released += resident }
        }
        if let constants = BinaryPages.writableConstants {
            released += unmapUnchanged(in: constants)
        }
        return released
    }

    /// Drops the resident pages of `range` (whole pages of a private file mapping) that still
    /// hold the file's own contents; returns their bytes. A page the process changed is its own
    /// copy, and the kernel would discard it: it is left alone, and so is one swapped out.
    static func unmapUnchanged(in range: Range<UInt>) -> Int {
        guard let entries = pagemap(of: range) else { return 0 }
        var released = 0
        for run in unchangedRuns(entries, from: range.lowerBound, page: page) {
            if madvise(UnsafeMutableRawPointer(bitPattern: run.lowerBound), run.count, MADV_DONTNEED) == 0 {
                released += run.count
            }
        }
        return released
    }

    /// The `/proc/self/pagemap` entry of each page of `range` (whole pages).
    static func pagemap(of range: Range<UInt>) -> [UInt64]? {
        let map = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        guard map >= 0 else { return nil }
        defer { close(map) }
        var entries = [UInt64](repeating: 0, count: range.count / Int(page))
        let bytes = entries.withUnsafeMutableBytes { pread(map, $0.baseAddress, $0.count, off_t(range.lowerBound / page) * 8) }
        return bytes == entries.count * 8 ? entries : nil
    }

    private static let page = UInt(sysconf(Int32(_SC_PAGESIZE)))

    /// The runs of pages whose pagemap entries say present and backed by the file (bit 63 and
    /// bit 61, `Documentation/admin-guide/mm/pagemap.rst`), `entries[i]` describing the page at
    /// `start + i * page`.
    static func unchangedRuns(_ entries: [UInt64], from start: UInt, page: UInt) -> [Range<UInt>] {
        let present: UInt64 = 1 << 63
        let fromFile: UInt64 = 1 << 61
        var runs: [Range<UInt>] = []
        var first: Int?
        for index in 0...entries.count {
            if index < entries.count, entries[index] & (present | fromFile) == present | fromFile {
                if first == nil { first = index }
            } else if let began = first {
                runs.append(start + UInt(began) * page..<start + UInt(index) * page)
                first = nil
            }
        }
        return runs
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
