import CSpawn
import Glibc
import MedicCore

/// Runs a program to its end with `medic_run`: no shell, its own process group killed at the
/// timeout, its output kept up to a bound. It blocks: call it on a thread of its own.
enum ProgramRun {
    static func run(
        _ arguments: [String], environment: [String], directory: String = "/", uid: uid_t = .max, gid: gid_t = .max, groups: [gid_t] = [],
        timeout: Duration, outputLimit: Int
    ) -> (result: medic_run_result, output: String) {
        var result = medic_run_result()
        var output = [CChar](repeating: 0, count: outputLimit + 1)
        withCStrings(arguments) { argv in
            withCStrings(environment) { envp in
                medic_run(argv, envp, directory, uid, gid, groups, groups.count, Int(timeout.milliseconds), &output, outputLimit, &result)
            }
        }
        return (result, String(decoding: output[0..<result.kept].map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
}

/// Calls `body` with a NULL-terminated C array of the strings.
private func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return body(pointers)
}
