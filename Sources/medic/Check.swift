import ArgumentParser
import Foundation
import Playbooks

/// `medic check PATH...`: validates playbook files (or directories of them).
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate playbooks.",
        discussion: """
            Prints every problem as FILE:LINE:COLUMN: MESSAGE and exits 1 if there is any, 0 if \
            all files are valid. A directory stands for every *.yaml and *.yml file in it.
            """)

    @Argument(help: "Playbook files or directories.")
    var paths: [String]

    @Flag(help: "Print the problems as a JSON array of {file, line, column, message}.")
    var json = false

    func run() throws {
        var problems: [Diagnostic] = []
        for path in paths where !FileManager.default.fileExists(atPath: path) {
            problems.append(Diagnostic(file: path, line: 1, column: 1, message: "no such file or directory"))
        }
        let files = PlaybookFiles.expand(paths.filter { FileManager.default.fileExists(atPath: $0) })
        let loaded = PlaybookDirectory.load(files: files)
        problems += loaded.refused.flatMap(\.diagnostics.all)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try encoder.encode(problems), as: UTF8.self))
        } else {
            for problem in problems { print(problem) }
            for playbook in loaded.playbooks {
                print("\(playbook.file): ok: playbook \(playbook.name), \(playbook.targets.count) targets, \(playbook.rules.count) rules")
            }
        }
        if !problems.isEmpty { throw ExitCode(1) }
    }
}
