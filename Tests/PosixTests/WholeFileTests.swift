import Foundation
import Glibc
import Posix
import Testing

@Suite("Whole files: kernel files read to their end, not to the first page")
struct WholeFileTests {
    @Test("/proc/self/smaps, many pages long, is read to its last mapping")
    func kernelFileOfManyPages() throws {
        let smaps = try #require(WholeFile.text("/proc/self/smaps"))
        let maps = try #require(WholeFile.text("/proc/self/maps"))
        #expect(smaps.utf8.count > 16_384, "smaps is \(smaps.utf8.count) bytes")
        // Every mapping of maps has its entry in smaps, the last ones (the stack, the vDSO) too.
        let mappings = maps.split(separator: "\n")
        let entries = smaps.split(separator: "\n").filter { $0.hasPrefix("VmFlags:") }
        #expect(mappings.count > 20)
        #expect(entries.count >= mappings.count - 1, "\(entries.count) entries in smaps, \(mappings.count) mappings")
        #expect(maps.contains("[stack]"))
        #expect(smaps.contains("[stack]"))
    }

    @Test("a regular file is read whole; a limit stops the read one byte past what the caller wants")
    func regularFileAndLimit() throws {
        let path = NSTemporaryDirectory() + "medic-whole-\(getpid())"
        defer { unlink(path) }
        let text = (1...20_000).map(String.init).joined(separator: "\n")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(WholeFile.text(path) == text)

        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        #expect(try WholeFile.bytes(of: descriptor, limit: 1001).count == 1001)
        #expect(WholeFile.text(path + ".missing") == nil)
    }
}
