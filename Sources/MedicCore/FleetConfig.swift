/// The `fleet:` section of medicd's config: how this host joins its fleet in etcd. A host
/// without it is a fleet of one and needs no etcd.
public struct FleetConfig: Sendable, Equatable {
    /// The fleet's name: its keys live under `/medic/NAME/`.
    public var name: String
    /// This host's name in the fleet (default: its hostname).
    public var host: String
    /// `HOST:PORT` where this host's medicd answers its peers' probes (`GET /health`).
    public var address: String
    /// etcd's client URLs, one per member.
    public var endpoints: [String]
    /// How long this host's registration outlives its last keep-alive, and how often it sends one.
    public var leaseTTL: Duration = .seconds(3)
    public var keepAlive: Duration = .seconds(1)
    /// An etcd user, with its password read from a file only root can read.
    public var user: String?
    public var passwordFile: String?
    /// TLS: the CA that signed etcd's certificate, and this host's certificate and key.
    public var caFile: String?
    public var certificateFile: String?
    public var keyFile: String?
    /// With fewer than two peers to corroborate, how long a lost host stays lost before it is
    /// taken as down.
    public var aloneGrace: Duration = .seconds(30)

    public init(name: String, host: String, address: String, endpoints: [String]) {
        self.name = name
        self.host = host
        self.address = address
        self.endpoints = endpoints
    }

    /// The fleet's key prefix, `/medic/NAME/`.
    public var prefix: String { "/medic/\(name)/" }
}
