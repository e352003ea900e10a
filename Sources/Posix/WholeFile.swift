import Glibc

/// Reads a file to its end: until `read` returns 0, not until the first short read.
///
/// The kernel's own files (`/proc`, `/sys`, cgroup2) have no size (`stat` says 0) and are
/// made as they are read, about a page per `read` (seq_file): one read, as Foundation's
/// `String(contentsOfFile:)` makes of a file of size 0, gets the first page only. So
/// `/proc/self/smaps` (tens of KiB), `/proc/self/mountinfo` with many mounts or the
/// `cgroup.procs` of a unit with many processes come back cut short, without an error. Every
/// kernel file Medic reads whole goes through here.
public enum WholeFile {
    /// The file's text, or nil if it cannot be opened or read. Bytes that are not UTF-8 are
    /// replaced, not refused.
    public static func text(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        guard let bytes = try? bytes(of: descriptor) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Everything `descriptor` reads from where it stands to its end, at most `limit` bytes
    /// (the caller tells a file longer than it wants by asking one byte more).
    public static func bytes(of descriptor: Int32, limit: Int = 256 << 20) throws(PosixError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while bytes.count < limit {
            let wanted = min(chunk.count, limit - bytes.count)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress!, wanted) }
            if n < 0, errno == EINTR { continue }
            if n < 0 { throw PosixError("read") }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[..<n])
        }
        return bytes
    }
}
