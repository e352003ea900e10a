import Foundation
import MedicCore

/// One server taken out of its pool for a lost peer: at `/medic/FLEET/held/PEER/SERVER`
/// (`SERVER` base64url-encoded), bound to no lease, so that it outlives the host that took it.
public struct PoolHold: StoredJSON, Sendable, Equatable {
    public var server: String
    public var peer: String
    /// The host that took it out, its incident, and the fencing token it acted under.
    public var by: String
    public var incident: Int64
    public var fencingToken: String?
    /// When (RFC 3339).
    public var since: String
}

extension FleetKeys {
    /// The servers taken out for `peer`: `held/PEER/`.
    public func held(for peer: String) -> String { prefix + "held/" + peer + "/" }

    public func hold(_ server: String, of peer: String) -> String {
        held(for: peer) + Data(server.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }
}

/// `FleetPoolHolds` in etcd. Best effort on write (a hold not written is still in the acting
/// host's own audit log and memory); a read that fails says so (nil).
public struct PoolHolds: FleetPoolHolds {
    public let store: FleetStore
    public let keys: FleetKeys
    public let host: String

    public init(store: FleetStore, fleet: FleetConfig) {
        self.store = store
        keys = FleetKeys(fleet: fleet.name)
        host = fleet.host
    }

    public func taken(_ server: String, of peer: String, incident: Int64, fencingToken: String?) async {
        let hold = PoolHold(server: server, peer: peer, by: host, incident: incident, fencingToken: fencingToken, since: Timestamp.now().iso8601)
        _ = try? await store.put(keys.hold(server, of: peer), hold.bytes, lease: nil)
    }

    public func returned(_ server: String, of peer: String) async {
        _ = try? await store.delete(keys.hold(server, of: peer), prefix: false)
    }

    public func isHeld(_ server: String, of peer: String) async -> Bool? {
        guard let key = try? await store.get(keys.hold(server, of: peer)) else { return nil }
        return key != nil
    }
}
