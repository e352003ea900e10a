import Foundation
import Posix
import Yams

/// What every YAML file Medic reads goes through before it is read as a playbook or the config:
/// bounded in size, text, valid YAML, and not an alias bomb; every problem as a `Diagnostic`.
enum YAMLDocument {
    /// Files larger than this are refused before parsing.
    static let maximumFileSize = 1 << 20
    /// YAML trees with more nodes than this (after alias expansion) are refused.
    static let maximumNodes = 50_000
    static let maximumDepth = 64

    /// Reads a file's bytes (one more than the limit, so an oversized file is noticed). The file
    /// is opened so that nothing can block: non-blocking, then checked with `fstat` to be a
    /// regular file — a FIFO, socket, device or directory is refused, named for what it is.
    static func read(file: String) -> Result<[UInt8], Diagnostics> {
        func fail(_ message: String) -> Result<[UInt8], Diagnostics> {
            .failure(Diagnostics([Diagnostic(file: file, line: 1, column: 1, message: message)]))
        }
        let fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return fail("cannot open file: \(PosixError.reason())") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return fail("cannot stat file: \(PosixError.reason())") }
        if let kind = FileKind.nonRegular(info.st_mode) {
            return fail("\(file) is \(kind), not a regular file; refused (a playbook or config is a YAML file)")
        }
        do {
            return .success(try WholeFile.bytes(of: fd, limit: maximumFileSize + 1))
        } catch {
            return fail("cannot read file: \(error.reason)")
        }
    }

    /// The document's tree. `what` names the kind of file (`a playbook`), `needs` what an
    /// empty one lacks.
    static func compose(data: [UInt8], file: String, what: String, needs: String) -> Result<Node, Diagnostics> {
        func fail(_ message: String) -> Result<Node, Diagnostics> {
            .failure(Diagnostics([Diagnostic(file: file, line: 1, column: 1, message: message)]))
        }
        if data.count > maximumFileSize {
            return fail("file is \(data.count) bytes; files larger than \(maximumFileSize) bytes are refused")
        }
        if data.contains(0) { return fail("file is binary (it contains NUL bytes); \(what) is YAML text") }
        guard let text = String(validating: data, as: UTF8.self) else {
            return fail("file is not valid UTF-8; \(what) is YAML text in UTF-8")
        }
        if text.allSatisfy({ $0.isWhitespace }) {
            return fail("file is empty; \(what) needs at least \(needs)")
        }
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else { return fail("file holds no YAML document") }
            root = node
        } catch let error as YamlError {
            return .failure(Diagnostics([diagnostic(for: error, file: file)]))
        } catch {
            return fail("cannot parse YAML: \(error)")
        }
        guard root.boundedSize(limit: maximumNodes, depth: maximumDepth) != nil else {
            return fail("document expands to more than \(maximumNodes) nodes or \(maximumDepth) levels (an alias bomb?); refused")
        }
        return .success(root)
    }

    /// The value read, or the problems found in reading it, in file order.
    static func result<Value>(_ value: Value?, _ diagnostics: [Diagnostic]) -> Result<Value, Diagnostics> {
        if let value, diagnostics.isEmpty { return .success(value) }
        return .failure(Diagnostics(diagnostics.sorted { ($0.line, $0.column) < ($1.line, $1.column) }))
    }

    /// Where `key`, first written at `first` (1-based line and column), is written again in the
    /// same mapping: a later line indented as far (block style), or later on the same line
    /// (flow style, `{ a: 1, a: 2 }`).
    static func repeated(key: String, after first: (line: Int, column: Int), in text: String) -> (line: Int, column: Int)? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard first.line >= 1, first.line <= lines.count else { return nil }
        func isKey(_ line: String, at offset: Int) -> Bool {
            let rest = line.dropFirst(offset)
            guard rest.hasPrefix(key) else { return false }
            return rest.dropFirst(key.count).drop { $0 == " " }.first == ":"
        }
        let own = Array(lines[first.line - 1])
        var offset = first.column - 1 + key.count
        while offset < own.count {
            if [",", "{"].contains(own[offset]) {
                let start = own[(offset + 1)...].firstIndex { $0 != " " } ?? own.count
                if start < own.count, isKey(String(own), at: start) { return (first.line, start + 1) }
            }
            offset += 1
        }
        let indent = first.column - 1
        for index in first.line..<lines.count {
            let line = lines[index]
            let leading = line.prefix { $0 == " " }.count
            if line.trimmingCharacters(in: .whitespaces).isEmpty || line.dropFirst(leading).hasPrefix("#") { continue }
            if leading < indent { return nil }
            if leading == indent, isKey(line, at: leading) { return (index + 1, leading + 1) }
        }
        return nil
    }

    private static func diagnostic(for error: YamlError, file: String) -> Diagnostic {
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let text = [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ": ")
            return Diagnostic(file: file, line: mark.line, column: mark.column, message: "YAML syntax: \(text)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Yams marks the first of the keys; the problem is where it is written again.
            let first = (line: context.mark.line, column: context.mark.column)
            let again = duplicates.first.flatMap { repeated(key: $0, after: first, in: context.text) }
            return Diagnostic(
                file: file, line: again?.line ?? first.line, column: again?.column ?? first.column,
                message: "duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) in a mapping"
                    + (again != nil ? " (first at line \(first.line), column \(first.column))" : ""))
        case .reader(let problem, _, _, _):
            return Diagnostic(file: file, line: 1, column: 1, message: "cannot read YAML: \(problem)")
        default:
            return Diagnostic(file: file, line: 1, column: 1, message: "cannot parse YAML: \(error)")
        }
    }
}
