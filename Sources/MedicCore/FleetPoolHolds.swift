/// The servers Medic took out of their pools on a fleet peer's behalf, as the whole fleet
/// remembers them (the `Fleet` module keeps them in etcd). The peer that took them out may die
/// before their host is back: whoever acts on that host then returns them, and only them.
public protocol FleetPoolHolds: Sendable {
    /// `server` (`PoolAction.key`) of `peer` was taken out by this host in `incident`.
    func taken(_ server: String, of peer: String, incident: Int64, fencingToken: String?) async
    /// `server` of `peer` is back in service.
    func returned(_ server: String, of peer: String) async
    /// Whether a host of the fleet took `server` of `peer` out and has not returned it; nil if
    /// the fleet cannot be asked.
    func isHeld(_ server: String, of peer: String) async -> Bool?
}
