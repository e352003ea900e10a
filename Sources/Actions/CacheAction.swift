import Foundation
import MedicCore

/// Runs `cache` steps: bans, in every Varnish the target sits behind, the cached objects that
/// match the step's expression (`ban req.url ~ "^/api/"`), so that a faulty answer in the cache
/// stops being served. Each ban is read back from `ban.list` before the step calls itself done.
public struct CacheAction: Sendable {
    public var cli: VarnishCLI

    public init(cli: VarnishCLI = VarnishCLI()) { self.cli = cli }

    /// Bans `expression` in the Varnish of every member that is behind one (each Varnish once).
    public func run(ban expression: String, members: [PoolMembership]) async -> StepOutcome {
        var seen: Set<String> = []
        let varnishes = members.compactMap { member -> (address: String, secret: String)? in
            guard case .varnish(let address, let secret) = member.balancer, seen.insert(address).inserted else { return nil }
            return (address, secret)
        }
        guard !varnishes.isEmpty else { return .failure("the target is behind no Varnish: a cache ban needs 'pool: { varnish: HOST:PORT, … }'") }
        var details = ["cache_ban": expression, "varnish": varnishes.map(\.address).joined(separator: ", ")]
        var done: [String] = []
        // ban.list shows the expression as Varnish parsed it: without its quotes.
        let wanted = Self.unquoted(expression)
        for varnish in varnishes {
            do {
                let replies = try await cli.run(["ban \(expression)", "ban.list"], at: varnish.address, secretFile: varnish.secret)
                guard let listed = replies[1].body.split(separator: "\n").first(where: { Self.unquoted($0).hasSuffix(" " + wanted) }) else {
                    details["ban_list"] = String(replies[1].body.prefix(1000))
                    return .failure("Varnish at \(varnish.address) accepted the ban but its ban.list does not show '\(wanted)'", details)
                }
                details["ban_list.\(varnish.address)"] = String(listed)
                done.append(varnish.address)
            } catch {
                let before = done.isEmpty ? "" : " (banned already at \(done.joined(separator: ", ")))"
                return .failure(error.description + before, details)
            }
        }
        return .success("banned \(expression) at Varnish \(done.joined(separator: ", "))", details)
    }

    /// An expression with its quotes gone and its spaces single, as ban.list shows it
    /// (`req.url ~ "^/api/"` is listed `req.url ~ ^/api/`).
    static func unquoted<S: StringProtocol>(_ expression: S) -> String {
        expression.replacingOccurrences(of: "\"", with: "").split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }
}
