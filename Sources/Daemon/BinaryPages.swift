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
            _ = writableConstants
            for segment in segments() {
                let start = UnsafeMutableRawPointer(bitPattern: segment.pages.lowerBound)
                _ = madvise(start, segment.pages.count, MADV_RANDOM)
                if !segment.writable {
                    _ = madvise(start, segment.pages.count, MADV_DONTNEED)
                }
            }
            dropFromPageCache()
        }
    }

    /// Drops the binary's pages that no process maps from the page cache, so that a page
    /// mapped again is read alone (with `MADV_RANDOM`), not mapped with the 64 KiB of cached
    /// neighbours around it. A binary installed moments ago is still dirty in the cache, and a
    /// dirty page cannot be dropped: it is written out first, which waits for the disk.
    private static func dropFromPageCache() {
        let binary = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
        guard binary >= 0 else { return }
        _ = fdatasync(binary)
        _ = posix_fadvise(binary, 0, 0, POSIX_FADV_DONTNEED)
        close(binary)
    }

    /// The program's loadable segments, from its program headers as the kernel passed them
    /// (placed where the program's own header says it was loaded).
    static func segments() -> [Segment] {
        guard let (headers, bias) = programHeaders() else { return [] }
        return headers.filter { $0.p_type == UInt32(PT_LOAD) }.map { header in
            let start = bias + UInt(header.p_vaddr)
            let end = start + UInt(header.p_memsz)
            return Segment(
                pages: (start & ~(page - 1))..<((end + page - 1) & ~(page - 1)),
                writable: header.p_flags & UInt32(PF_W) != 0)
        }
    }

    /// The whole pages of the program's constants (`.rodata`) when its link put them in a
    /// writable segment; nil when they are in a read-only one, which `ColdPages` lets go of
    /// whole. Swift gives the constants it emits a writable `.rodata` section, so the linker
    /// makes the whole output section writable: in medicd 37 MB of string literals, tables and
    /// ICU's data, beside the globals. Nothing writes them after the loader has relocated them.
    /// Read from the binary's section headers once, by `mapOnlyWhatRuns` on its own thread
    /// (the headers lie at the end of the file, perhaps not in the page cache).
    static let writableConstants: Range<UInt>? = {
        guard let (_, bias) = programHeaders(),
              let constants = section(named: ".rodata", in: "/proc/self/exe"),
              constants.sh_flags & UInt64(SHF_WRITE) != 0, constants.sh_flags & UInt64(SHF_ALLOC) != 0
        else { return nil }
        let start = (bias + UInt(constants.sh_addr) + page - 1) & ~(page - 1)
        let end = (bias + UInt(constants.sh_addr) + UInt(constants.sh_size)) & ~(page - 1)
        return start < end ? start..<end : nil
    }()

    private static let page = UInt(sysconf(Int32(_SC_PAGESIZE)))

    /// The program headers as the kernel passed them, and how far from its link addresses
    /// the program was loaded.
    private static func programHeaders() -> (UnsafeBufferPointer<Elf64_Phdr>, UInt)? {
        let headers = UnsafeBufferPointer(
            start: UnsafePointer<Elf64_Phdr>(bitPattern: UInt(getauxval(UInt(AT_PHDR)))),
            count: Int(getauxval(UInt(AT_PHNUM))))
        guard let own = headers.first(where: { $0.p_type == UInt32(PT_PHDR) }), let base = headers.baseAddress else { return nil }
        return (headers, UInt(bitPattern: base) - UInt(own.p_vaddr))
    }

    /// The header of the section `name` in the ELF file at `path`.
    static func section(named name: String, in path: String) -> Elf64_Shdr? {
        let file = open(path, O_RDONLY | O_CLOEXEC)
        guard file >= 0 else { return nil }
        defer { close(file) }
        var header = Elf64_Ehdr()
        guard readWhole(file, into: &header, at: 0), Int(header.e_shentsize) == MemoryLayout<Elf64_Shdr>.stride,
              header.e_shnum > 0, header.e_shstrndx < header.e_shnum else { return nil }
        var sections = [Elf64_Shdr](repeating: Elf64_Shdr(), count: Int(header.e_shnum))
        let read = sections.withUnsafeMutableBytes { pread(file, $0.baseAddress, $0.count, off_t(header.e_shoff)) }
        guard read == sections.count * MemoryLayout<Elf64_Shdr>.stride else { return nil }
        let names = sections[Int(header.e_shstrndx)]
        var text = [UInt8](repeating: 0, count: Int(names.sh_size))
        guard text.withUnsafeMutableBytes({ pread(file, $0.baseAddress, $0.count, off_t(names.sh_offset)) }) == text.count else { return nil }
        let wanted = Array(name.utf8) + [0]
        return sections.first { section in
            let start = Int(section.sh_name)
            return start + wanted.count <= text.count && text[start..<start + wanted.count].elementsEqual(wanted)
        }
    }

    /// Reads one fixed-size value from `file` at `offset`; false when the file is shorter.
    private static func readWhole<Value>(_ file: Int32, into value: inout Value, at offset: off_t) -> Bool {
        withUnsafeMutableBytes(of: &value) { pread(file, $0.baseAddress, $0.count, offset) == $0.count }
    }
}
