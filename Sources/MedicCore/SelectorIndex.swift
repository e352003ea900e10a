/// Target selectors looked up by name: plain names in a dictionary, only globs tried one by one,
/// so a playbook of 10,000 named units costs one hash lookup per name, not 10,000 comparisons.
public struct SelectorIndex<Value: Sendable>: Sendable {
    private var exact: [String: [(order: Int, value: Value)]] = [:]
    private var patterns: [(order: Int, selector: TargetSelector, value: Value)] = []

    /// Indexes `entries`; lookups return values in the order given here.
    public init(_ entries: [(selector: TargetSelector, value: Value)]) {
        for (order, entry) in entries.enumerated() {
            switch entry.selector {
            case .unit(let name) where !entry.selector.isPattern: exact[name, default: []].append((order, entry.value))
            case .host: exact[TargetSelector.hostName, default: []].append((order, entry.value))
            default: patterns.append((order, entry.selector, entry.value))
            }
        }
    }

    /// The values whose selector selects `name`, in the order they were given.
    public func values(selecting name: String) -> [Value] {
        let named = exact[name] ?? []
        let globbed = patterns.filter { $0.selector.matches(name) }
        if globbed.isEmpty { return named.map(\.value) }
        return (named + globbed.map { ($0.order, $0.value) }).sorted { $0.order < $1.order }.map(\.value)
    }

    /// Whether any selector selects `name`.
    public func selects(_ name: String) -> Bool {
        exact[name] != nil || patterns.contains { $0.selector.matches(name) }
    }
}
