/// systemd's rules for unit names, as far as Medic needs them.
enum UnitName {
    static let suffixes = ["service", "socket", "target", "timer", "mount", "path", "slice", "scope"]
    static let maximumLength = 255

    /// What is wrong with a unit name, or nil if it is valid.
    static func problem(with name: String) -> String? {
        if name.utf8.count > maximumLength { return "longer than \(maximumLength) bytes" }
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else {
            return "it needs a type suffix, e.g. '\(name).service'"
        }
        let suffix = String(name[name.index(after: dot)...])
        if !suffixes.contains(suffix) {
            return "'.\(suffix)' is not a unit type; use one of \(suffixes.map { "." + $0 }.joined(separator: ", "))"
        }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@*?[]!^")
        if let bad = name.first(where: { !allowed.contains($0) }) {
            return "'\(bad)' is not allowed (letters, digits, : - _ . \\ @, and the globs * ? [ ])"
        }
        return nil
    }
}
