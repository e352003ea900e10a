import Foundation
import TestHost
import Testing

/// The release medicd that `scripts/test` builds is linked as Package.swift says: the functions
/// `Sources/medicd/link-order.txt` lists open its code, packed together, it exports no symbols,
/// and its relative relocations are packed. Without them it is some 13 MiB larger in memory at
/// 100 services (scripts/compare, scenario 5), and nothing else would notice.
@Suite("The release medicd's link")
struct ReleaseLinkTests {
    static let medicd = PackageTests.release + "/medicd"

    @Test("the functions link-order.txt lists open the code, packed together")
    func functionsInOrder() throws {
        let listed = try String(contentsOfFile: Paths.packageRoot + "/Sources/medicd/link-order.txt", encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
        let addresses = try Self.functionAddresses()
        let placed = listed.compactMap { addresses[$0] }
        #expect(placed.count > listed.count * 9 / 10, "most listed functions are in the binary")
        let text = try #require(try Self.textSection())
        #expect(placed.first == text.start, "the first listed function opens the code")
        // Packed together: in the first 40% of the code (scattered, as an unordered link leaves
        // them, 38% of them are in its first third).
        let packed = placed.filter { $0 < text.start + text.size * 2 / 5 }.count
        #expect(packed >= placed.count * 99 / 100, "\(packed) of \(placed.count) listed functions in the first 40% of the code")
    }

    @Test("no symbol is exported and relative relocations are packed")
    func nothingExported() throws {
        let exported = try runProgram("/usr/bin/readelf", ["--dyn-syms", "--wide", Self.medicd])
            .split(separator: "\n").filter { $0.contains(" GLOBAL ") && !$0.contains(" UND ") }
        #expect(exported.count < 50, "exported: \(exported.prefix(5))")
        let sections = try runProgram("/usr/bin/readelf", ["--section-headers", "--wide", Self.medicd])
        #expect(sections.contains(".relr.dyn"))
    }

    /// Where the release medicd's `.text` section starts, and its size.
    private static func textSection() throws -> (start: UInt64, size: UInt64)? {
        let headers = try runProgram("/usr/bin/readelf", ["--section-headers", "--wide", medicd])
        guard let line = headers.split(separator: "\n").first(where: { $0.contains(" .text ") }) else { return nil }
        let fields = line.split(separator: " ")
        guard let type = fields.firstIndex(of: "PROGBITS"), type + 4 < fields.count,
              let start = UInt64(fields[type + 1], radix: 16), let size = UInt64(fields[type + 3], radix: 16) else { return nil }
        return (start, size)
    }

    /// Each function symbol's address in the release medicd (the first, where a name repeats).
    private static func functionAddresses() throws -> [String: UInt64] {
        let symbols = try runProgram("/usr/bin/nm", ["--defined-only", medicd])
        var addresses: [String: UInt64] = [:]
        for line in symbols.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, "tTwW".contains(fields[1]), let address = UInt64(fields[0], radix: 16) else { continue }
            let name = String(fields[2])
            addresses[name] = min(addresses[name] ?? address, address)
        }
        return addresses
    }
}
