import MedicCore

/// Every balancer Medic speaks, each membership to its own.
public struct Balancers: LoadBalancerPool {
    public var haproxy: HAProxyRuntime
    public var varnish: VarnishPool
    public var nginx: NginxPool

    public init(haproxy: HAProxyRuntime = HAProxyRuntime(), varnish: VarnishPool = VarnishPool(), nginx: NginxPool = NginxPool()) {
        self.haproxy = haproxy
        self.varnish = varnish
        self.nginx = nginx
    }

    public func servers(of member: PoolMembership) async throws(PoolError) -> [PoolServer] {
        switch member.balancer {
        case .haproxy: try await haproxy.servers(of: member)
        case .varnish: try await varnish.servers(of: member)
        case .nginx: try await nginx.servers(of: member)
        }
    }

    public func set(_ member: PoolMembership, to state: PoolState) async throws(PoolError) {
        switch member.balancer {
        case .haproxy: try await haproxy.set(member, to: state)
        case .varnish: try await varnish.set(member, to: state)
        case .nginx: try await nginx.set(member, to: state)
        }
    }
}
