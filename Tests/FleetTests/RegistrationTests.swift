import Fleet
import Foundation
import MedicCore
import Testing

@Suite("A host's registration in the fleet")
struct RegistrationTests {
    @Test("every balancer's server survives the trip through etcd's JSON: HAProxy's, Varnish's and nginx's, each once")
    func balancers() throws {
        let members = [
            PoolMembership(haproxy: "/run/haproxy/admin.sock", backend: "app", server: "web1"),
            PoolMembership(balancer: .varnish(cli: "127.0.0.1:6082", secretFile: "/etc/varnish/secret"), backend: "app", server: "web1"),
            PoolMembership(balancer: .nginx(upstreamFile: "/etc/nginx/medic/app.servers", config: "/etc/nginx/nginx.conf", pidFile: "/run/nginx.pid"), backend: "app", server: "10.0.0.1:8081"),
        ]
        let registration = Registration(host: "web1", address: "10.0.0.1:9470", servers: members.map(Registration.Server.init), since: "now")
        let decoded = try JSONDecoder().decode(Registration.self, from: JSONEncoder().encode(registration))
        #expect(decoded.servers.map(\.membership) == members)
        let playbook = Playbook(
            name: "p", file: "p.yaml", contentHash: "", targets: members.map { TargetSpec(selector: .unit("a.service"), pool: $0) } + [TargetSpec(selector: .unit("b.service"), pool: members[2])],
            rules: [])
        #expect(Registration.servers(of: [playbook]).count == 3)
    }
}
