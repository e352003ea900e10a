import Foundation
import Posix

/// The test backend (`backend/medic-backend.c`) and load generator (`backend/medic-load.c`),
/// compiled with the system's C compiler on first use into `.build/` beside this package's sources.
public enum Backend {
    /// The package root, from this file's place in it.
    public static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The path of the compiled backend; compiles it once per process when its source is newer.
    public static func path() throws -> String {
        try backend.get()
    }

    /// The path of the compiled load generator.
    public static func loadGenerator() throws -> String {
        try load.get()
    }

    private static let backend: Result<String, Error> = Result { try compile("medic-backend") }
    private static let load: Result<String, Error> = Result { try compile("medic-load") }

    private static func compile(_ name: String) throws -> String {
        let source = packageRoot + "/backend/\(name).c"
        let output = packageRoot + "/.build/\(name)"
        let fm = FileManager.default
        let sourceDate = try fm.attributesOfItem(atPath: source)[.modificationDate] as? Date ?? .distantFuture
        if let built = try? fm.attributesOfItem(atPath: output)[.modificationDate] as? Date, built >= sourceDate {
            return output
        }
        try fm.createDirectory(atPath: packageRoot + "/.build", withIntermediateDirectories: true)
        let temporary = output + ".\(getpid())"
        try runProgram("/usr/bin/cc", ["-O2", "-Wall", "-Werror", "-o", temporary, source])
        if rename(temporary, output) != 0 { throw TestHostError.setup("rename \(temporary): \(PosixError.reason())") }
        return output
    }
}
