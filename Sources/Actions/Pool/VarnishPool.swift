import Foundation
import MedicCore

/// Varnish as a pool: a director (the membership's `backend`) and its backends (`server`), read
/// with `backend.list -j -p DIRECTOR` and set with `backend.set_health`. `maint` forces a
/// backend sick; Varnish has no drain, so `drain` does the same (requests already sent to it
/// finish; new ones go elsewhere); `ready` gives its health back to its probe (`auto`). A
/// `vcl.use` brings new instances of the backends, healthy by their probes: each server's
/// instance is its VCL, so that Medic sees its own mark gone and sets it again.
public struct VarnishPool: LoadBalancerPool {
    public var cli: VarnishCLI

    public init(cli: VarnishCLI = VarnishCLI()) { self.cli = cli }

    public func servers(of member: PoolMembership) async throws(PoolError) -> [PoolServer] {
        let (address, secret) = try Self.endpoint(member)
        let replies = try await cli.run(["backend.list -j -p \(member.backend)", "backend.list -j"], at: address, secretFile: secret)
        return try Self.members(director: member.backend, details: replies[0].body, all: replies[1].body, address: address)
    }

    public func set(_ member: PoolMembership, to state: PoolState) async throws(PoolError) {
        let (address, secret) = try Self.endpoint(member)
        _ = try await cli.run(["backend.set_health \(member.server) \(state == .ready ? "auto" : "sick")"], at: address, secretFile: secret)
    }

    private static func endpoint(_ member: PoolMembership) throws(PoolError) -> (String, String) {
        guard case .varnish(let cli, let secretFile) = member.balancer else { throw PoolError("\(PoolMembership.describe(member)) is not Varnish's") }
        return (cli, secretFile)
    }

    /// The director's backends, from `backend.list -j -p DIRECTOR` (their health, as the
    /// director sees it) and `backend.list -j` (whether each is forced sick).
    static func members(director: String, details: String, all: String, address: String) throws(PoolError) -> [PoolServer] {
        let found = try objects(details, address: address)
        guard let (key, entry) = found.first(where: { $0.key.hasSuffix("." + director) || $0.key == director }) else {
            throw PoolError("Varnish at \(address) has no director '\(director)' in its active VCL (backend.list shows \(found.keys.sorted().joined(separator: ", ")))")
        }
        guard let backends = (entry["probe_details"] as? [String: Any])?["backends"] as? [String: Any] else {
            throw PoolError("'\(key)' at Varnish \(address) is not a director with backends (its type is \(entry["type"] as? String ?? "unknown"))")
        }
        let vcl = key.hasSuffix("." + director) ? String(key.dropLast(director.count)) : ""
        let admins = try objects(all, address: address)
        return backends.keys.sorted().map { name in
            let health = (backends[name] as? [String: Any])?["health"] as? String ?? "?"
            let forced = (admins[vcl + name]?["admin_health"] as? String) == "sick"
            let status = forced ? "MAINT (set sick)" : health == "healthy" ? "UP" : "DOWN (\(health))"
            return PoolServer(name: name, admin: forced ? .maint : .ready, status: status, sessions: 0, instance: vcl.isEmpty ? nil : String(vcl.dropLast()))
        }
    }

    /// The objects of a `-j` answer: `[version, [command…], time, {NAME: {…}}]`.
    private static func objects(_ json: String, address: String) throws(PoolError) -> [String: [String: Any]] {
        guard let array = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [Any], array.count >= 4,
              let objects = array[3] as? [String: Any]
        else { throw PoolError("Varnish at \(address) answered backend.list -j with something else than its JSON: \(json.prefix(200))") }
        return objects.compactMapValues { $0 as? [String: Any] }
    }
}
