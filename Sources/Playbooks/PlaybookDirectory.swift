import Foundation
import MedicCore

/// The playbooks of a directory (`/etc/medic/playbooks`): every `*.yaml` and `*.yml` in it.
public struct PlaybookDirectory: Sendable {
    /// The playbooks that validated.
    public var playbooks: [Playbook]
    /// Files refused, each with its problems.
    public var refused: [(file: String, diagnostics: Diagnostics)]

    /// Why a directory could not be read at all.
    public enum LoadError: Error, CustomStringConvertible {
        case notFound(String)
        case notADirectory(String)
        case unreadable(String, String)
        case untrusted(String)

        public var description: String {
            switch self {
            case .notFound(let path): "playbook directory \(path) does not exist"
            case .notADirectory(let path): "playbook path \(path) is not a directory"
            case .unreadable(let path, let why): "cannot read playbook directory \(path): \(why)"
            case .untrusted(let problem): "playbook directory refused: \(problem)"
            }
        }
    }

    /// Loads every playbook file in `path`, in name order. A unit (or glob) named by two
    /// playbooks is a problem of the second file (the first keeps it); a unit matching globs of
    /// two playbooks goes to the first. The host may be a target of several playbooks.
    public static func load(_ path: String, defaults: PlaybookDefaults = PlaybookDefaults()) throws(LoadError) -> PlaybookDirectory {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw .notFound(path) }
        guard isDirectory.boolValue else { throw .notADirectory(path) }
        if let problem = FileTrust.problem(path) { throw .untrusted(problem) }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw .unreadable(path, "\(error)")
        }
        let files = names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { path + "/" + $0 }
        return load(files: files, defaults: defaults)
    }

    /// Loads the given playbook files, checking them against each other too.
    public static func load(files: [String], defaults: PlaybookDefaults = PlaybookDefaults()) -> PlaybookDirectory {
        var result = PlaybookDirectory(playbooks: [], refused: [])
        var owners: [String: String] = [:]
        var names: [String: String] = [:]
        for file in files {
            if let problem = FileTrust.problem(file) {
                result.refused.append((file, Diagnostics([Diagnostic(file: file, line: 1, column: 1, message: "refused: \(problem)")])))
                continue
            }
            switch PlaybookParser.parse(file: file, defaults: defaults) {
            case .failure(let diagnostics):
                result.refused.append((file, diagnostics))
            case .success(let playbook):
                var problems: [Diagnostic] = []
                if let other = names[playbook.name] {
                    problems.append(Diagnostic(file: file, line: 1, column: 1, message: "playbook name '\(playbook.name)' is already used by \(other)"))
                }
                for target in playbook.targets where target.selector != .host {
                    if let other = owners[target.selector.description] {
                        problems.append(Diagnostic(file: file, line: 1, column: 1, message: "\(target.selector) is already a target of \(other); a target belongs to one playbook"))
                    }
                }
                if problems.isEmpty {
                    names[playbook.name] = file
                    for target in playbook.targets { owners[target.selector.description] = file }
                    result.playbooks.append(playbook)
                } else {
                    result.refused.append((file, Diagnostics(problems)))
                }
            }
        }
        return result
    }
}
