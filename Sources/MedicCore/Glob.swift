/// Shell-style globs for unit names: `*`, `?` and `[abc]` / `[a-z]` classes.
public enum Glob {
    public static func matches(_ pattern: String, _ name: String) -> Bool {
        // A plain name (most targets) is compared, not walked.
        if !pattern.utf8.contains(where: { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "[") }) {
            return pattern == name
        }
        return match(Array(pattern), 0, Array(name), 0)
    }

    private static func match(_ p: [Character], _ i: Int, _ s: [Character], _ j: Int) -> Bool {
        var i = i, j = j
        var starP = -1, starS = 0
        while j < s.count {
            if i < p.count, p[i] == "*" {
                starP = i; starS = j; i += 1
                continue
            }
            if i < p.count, let next = single(p, i, s[j]) {
                i = next; j += 1
                continue
            }
            guard starP >= 0 else { return false }
            i = starP + 1; starS += 1; j = starS
        }
        while i < p.count, p[i] == "*" { i += 1 }
        return i == p.count
    }

    /// If p[i] (a literal, `?` or a class) matches c, the index after it.
    private static func single(_ p: [Character], _ i: Int, _ c: Character) -> Int? {
        switch p[i] {
        case "?": return i + 1
        case "[":
            guard let close = p[(i + 1)...].firstIndex(of: "]") else { return p[i] == c ? i + 1 : nil }
            var k = i + 1
            var negate = false
            if k < close, p[k] == "!" || p[k] == "^" { negate = true; k += 1 }
            var found = false
            while k < close {
                if k + 2 < close, p[k + 1] == "-" {
                    if p[k] <= c && c <= p[k + 2] { found = true }
                    k += 3
                } else {
                    if p[k] == c { found = true }
                    k += 1
                }
            }
            return found != negate ? close + 1 : nil
        default:
            return p[i] == c ? i + 1 : nil
        }
    }
}
