import ArgumentParser
import Foundation
import MedicCore
import Playbooks

/// `medic check [--config FILE] [PATH...]`: validates the config and playbooks together, with
/// the daemon's own rules (ownership and mode included).
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the config and playbooks, as medicd would load them.",
        discussion: """
            Prints every problem as FILE:LINE:COLUMN: MESSAGE and exits 1 if there is any, 0 if \
            all is valid. With no PATH, checks the config (\(DaemonConfig.defaultPath), or \
            --config) and the playbook directory it names. A directory stands for every *.yaml \
            and *.yml file in it. Files and directories that are not owned by root or are \
            writable by group or others are refused, as medicd refuses them.
            """)

    @Option(help: "The config file (default: \(DaemonConfig.defaultPath), when it exists).")
    var config: String?

    @Argument(help: "Playbook files or directories (default: the config's playbook directory).")
    var paths: [String] = []

    @Flag(help: "Print the problems as a JSON array of {file, line, column, message}.")
    var json = false

    func run() throws {
        var problems: [Diagnostic] = []
        var settings = DaemonConfig()
        let file = DaemonConfig.file(given: config)
        if let file {
            if !FileManager.default.fileExists(atPath: file) {
                problems.append(Diagnostic(file: file, line: 1, column: 1, message: "no such file"))
            } else {
                switch ConfigParser.parse(file: file) {
                case .failure(let diagnostics): problems += diagnostics.all
                case .success(let read): settings = read
                }
            }
        }
        let paths = self.paths.isEmpty ? [settings.playbooks] : self.paths
        for path in paths where !FileManager.default.fileExists(atPath: path) {
            problems.append(Diagnostic(file: path, line: 1, column: 1, message: "no such file or directory"))
        }
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue, let problem = FileTrust.problem(path) {
                problems.append(Diagnostic(file: path, line: 1, column: 1, message: "refused: \(problem)"))
            } else {
                files += PlaybookFiles.expand([path])
            }
        }
        let loaded = PlaybookDirectory.load(files: files, defaults: settings.defaults)
        problems += loaded.refused.flatMap(\.diagnostics.all)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try encoder.encode(problems), as: UTF8.self))
        } else {
            for problem in problems { print(problem) }
            if let file = settings.file { print("\(file): ok: config") }
            for playbook in loaded.playbooks {
                print("\(playbook.file): ok: playbook \(playbook.name), \(playbook.targets.count) targets, \(playbook.rules.count) rules")
            }
            if settings.alertmanager == nil {
                for playbook in loaded.playbooks where playbook.hasAlertRule {
                    print("\(playbook.file): note: its alert triggers need Alertmanager's webhook, and the config has no 'alertmanager:' section: they will not fire")
                }
            }
        }
        if !problems.isEmpty { throw ExitCode(1) }
    }
}
