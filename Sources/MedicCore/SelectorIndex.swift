/// Target selectors looked up by name: plain names in a dictionary, only globs tried one by one,
/// so a playbook of 10,000 named units costs one hash lookup per name, not 10,000 comparisons.
public struct SelectorIndex<Value: Sendable>: Sendable {
    /// Each plain name's first entry, and the entries of names given more than once: one
    /// table entry a name, no array each (a playbook of 10,000 names is two such tables).
    private var exact: [String: (order: Int, value: Value)] = [:]
    private var repeated: [String: [(order: Int, value: Value)]] = [:]
    private var patterns: [(order: Int, selector: TargetSelector, value: Value)] = []

    /// Indexes `entries`; lookups return values in the order given here.
    public init(_ entries: [(selector: TargetSelector, value: Value)]) {
        exact.reserveCapacity(entries.count)
        for (order, entry) in entries.enumerated() {
            switch entry.selector {
            case .unit(let name) where !entry.selector.isPattern: add(name, order, entry.value)
            case .host: add(TargetSelector.hostName, order, entry.value)
            default: patterns.append((order, entry.selector, entry.value))
            }
        }
    }

    private mutating func add(_ name: String, _ order: Int, _ value: Value) {
        if exact[name] == nil { exact[name] = (order, value) } else { repeated[name, default: []].append((order, value)) }
    }

    /// The values whose selector selects `name`, in the order they were given.
    public func values(selecting name: String) -> [Value] {
        var named = exact[name].map { [$0] } ?? []
        if let more = repeated[name] { named += more }
        let globbed = patterns.filter { $0.selector.matches(name) }
        if globbed.isEmpty { return named.map(\.value) }
        return (named + globbed.map { ($0.order, $0.value) }).sorted { $0.order < $1.order }.map(\.value)
    }

    /// Whether any selector selects `name`.
    public func selects(_ name: String) -> Bool {
        exact[name] != nil || patterns.contains { $0.selector.matches(name) }
    }
}
