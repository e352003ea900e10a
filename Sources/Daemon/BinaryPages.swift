import CLinux
import Glibc
import Systemd

/// Keeps in memory only the pages of medicd's own binary that it uses.
///
/// The kernel maps a faulting page of a file together with its neighbours that are in the page
/// cache (fault-around, 64 KiB), and reads ahead around it when it is not (read-around, the disk's
/// read-ahead). A binary that was just installed is wholly in the page cache, so each page medicd
/// touches maps the 64 KiB around it. `mapOnlyWhatRuns` asks for no read-ahead on the binary's
/// segments (`MADV_RANDOM`), unmaps the read-only ones (code and constants: never written, so
/// nothing is lost; the writable ones, which hold the relocated pointers and the globals, stay
/// mapped) and drops the binary's pages that no process maps from the page cache (written out
/// first: a binary installed moments ago is still dirty in the cache, and a dirty page cannot be
/// dropped). From then on a page of its constants and data is read and mapped when it is used, one
/// at a time. Code is too on kernels before 6.16; later ones read ahead in code mappings whatever
/// the advice, so there the code's layout (`link-order.txt`) is what keeps it small.
public enum BinaryPages {
    /// One loadable segment of the running program, widened to whole pages.
    struct Segment {
        let pages: Range<UInt>
        let writable: Bool
    }

    /// Call once, early: what ran before is mapped again as it is used. Runs on a thread of
    /// its own, since writing out a binary just installed waits for the disk.
    public static func mapOnlyWhatRuns() async {
        await onThreadOfItsOwn("medic-pages") {
            for segment in segments() {
                let start = UnsafeMutableRawPointer(bitPattern: segment.pages.lowerBound)
                _ = madvise(start, segment.pages.count, MADV_RANDOM)
                if !segment.writable {
                    _ = madvise(start, segment.pages.count, MADV_DONTNEED)
                }
            }
            let binary = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
            guard binary >= 0 else { return }
            _ = fdatasync(binary)
            _ = posix_fadvise(binary, 0, 0, POSIX_FADV_DONTNEED)
            close(binary)
        }
    }

    /// The program's loadable segments, from its program headers as the kernel passed them
    /// (placed where the program's own header says it was loaded).
    static func segments() -> [Segment] {
        let headers = UnsafeBufferPointer(
            start: UnsafePointer<Elf64_Phdr>(bitPattern: UInt(getauxval(UInt(AT_PHDR)))),
            count: Int(getauxval(UInt(AT_PHNUM))))
        guard let own = headers.first(where: { $0.p_type == UInt32(PT_PHDR) }), let base = headers.baseAddress else { return [] }
        let bias = UInt(bitPattern: base) - UInt(own.p_vaddr)
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        return headers.filter { $0.p_type == UInt32(PT_LOAD) }.map { header in
            let start = bias + UInt(header.p_vaddr)
            let end = start + UInt(header.p_memsz)
            return Segment(
                pages: (start & ~(page - 1))..<((end + page - 1) & ~(page - 1)),
                writable: header.p_flags & UInt32(PF_W) != 0)
        }
    }
}
