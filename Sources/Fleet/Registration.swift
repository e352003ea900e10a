import Foundation
import MedicCore

/// What a host says about itself in the fleet, under its lease at `/medic/FLEET/hosts/HOST`:
/// where its medicd answers its peers, and every pool server its playbooks name (what a peer
/// takes out of the pool if the host dies).
public struct Registration: StoredJSON, Sendable, Equatable {
    /// One pool server this host serves as.
    public struct Server: StoredJSON, Sendable, Equatable, Hashable {
        /// HAProxy's admin socket; empty for a server of Varnish's.
        public var haproxy: String
        /// Varnish's CLI address and secret file (the same path on every host), for Varnish's.
        public var varnish: String?
        public var secret: String?
        /// nginx's upstream file, configuration and PID file (paths on the host that runs that
        /// nginx, which its peers share), for nginx's.
        public var nginx: String?
        public var nginxConfig: String?
        public var nginxPid: String?
        public var backend: String
        public var server: String

        public init(_ member: PoolMembership) {
            haproxy = ""
            switch member.balancer {
            case .haproxy(let socket):
                haproxy = socket
            case .varnish(let cli, let secretFile):
                varnish = cli
                secret = secretFile
            case .nginx(let file, let config, let pidFile):
                nginx = file
                nginxConfig = config
                nginxPid = pidFile
            }
            backend = member.backend
            server = member.server
        }

        /// The pool membership it stands for.
        public var membership: PoolMembership {
            let balancer: PoolMembership.Balancer =
                if let varnish { .varnish(cli: varnish, secretFile: secret ?? "") }
                else if let nginx { .nginx(upstreamFile: nginx, config: nginxConfig ?? "", pidFile: nginxPid ?? "") }
                else { .haproxy(socket: haproxy) }
            return PoolMembership(balancer: balancer, backend: backend, server: server)
        }
    }

    public var host: String
    /// `HOST:PORT` of its medicd's fleet listener (`GET /health`).
    public var address: String
    public var servers: [Server]
    /// When it registered (this lease), RFC 3339.
    public var since: String
    /// Set just before a clean stop, so that its registration's end is not taken for a death.
    public var leaving: Bool

    public init(host: String, address: String, servers: [Server], since: String, leaving: Bool = false) {
        self.host = host
        self.address = address
        self.servers = servers
        self.since = since
        self.leaving = leaving
    }

    /// Every pool server the playbooks name, once each.
    public static func servers(of playbooks: [Playbook]) -> [Server] {
        var seen = Set<Server>()
        return playbooks.flatMap(\.targets).compactMap(\.pool).compactMap { pool in
            let server = Server(pool)
            return seen.insert(server).inserted ? server : nil
        }
    }

}

/// Where the fleet's keys live in etcd.
public struct FleetKeys: Sendable {
    public let prefix: String

    public init(fleet: String) { prefix = "/medic/\(fleet)/" }

    /// Every host's registration.
    public var hosts: String { prefix + "hosts/" }
    public func host(_ name: String) -> String { hosts + name }
}
