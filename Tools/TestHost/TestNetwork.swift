import Foundation
import Glibc
import Synchronization

/// A network for test hosts: a bridge in this machine's network namespace, at `gateway`
/// (10.77.N.1/24), and for each host a network namespace of its own joined to it by a veth
/// pair, with an address on the bridge and a default route through it. Only addresses of this
/// network, and loopback, are ever targets. `stop()` (also on deinit) removes the bridge; each
/// host removes its own namespace (and so its veth pair) when it is destroyed.
public final class TestNetwork: Sendable {
    public let bridge: String
    /// This machine's address on the bridge: where etcd and HAProxy listen for the hosts.
    public let gateway: String
    private let prefix: String
    private let next = Mutex(2)
    private let stopped = Atomic<Bool>(false)

    /// Creates a bridge on the first free 10.77.N.0/24.
    public init() throws {
        var chosen: Int?
        for subnet in 1...250 where (try? ip(["link", "add", "medicbr\(subnet)", "type", "bridge"])) != nil {
            chosen = subnet
            break
        }
        guard let subnet = chosen else { throw TestHostError.setup("no free bridge medicbr1…250 for a test network") }
        bridge = "medicbr\(subnet)"
        prefix = "10.77.\(subnet)."
        gateway = prefix + "1"
        do {
            try ip(["addr", "add", gateway + "/24", "dev", bridge])
            try ip(["link", "set", bridge, "up"])
        } catch {
            _ = try? ip(["link", "del", bridge])
            throw error
        }
    }

    deinit { stop() }

    /// Removes the bridge.
    public func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        _ = try? ip(["link", "del", bridge])
    }

    /// A namespace joined to the bridge, for one host: its name (under /run/netns) and address.
    func attach() throws -> (namespace: String, address: String) {
        let number = next.withLock { value -> Int in
            defer { value += 1 }
            return value
        }
        let address = prefix + String(number)
        let tag = String(format: "%06x", UInt32.random(in: 0..<0xffffff))
        let namespace = "medic-" + tag
        let outside = "mv\(tag)a", inside = "mv\(tag)b"
        try ip(["netns", "add", namespace])
        do {
            try ip(["link", "add", outside, "type", "veth", "peer", "name", inside])
            try ip(["link", "set", inside, "netns", namespace])
            try ip(["link", "set", outside, "master", bridge, "up"])
            try ip(["-n", namespace, "addr", "add", address + "/24", "dev", inside])
            try ip(["-n", namespace, "link", "set", inside, "up"])
            try ip(["-n", namespace, "link", "set", "lo", "up"])
            try ip(["-n", namespace, "route", "add", "default", "via", gateway])
        } catch {
            detach(namespace)
            throw error
        }
        return (namespace, address)
    }

    /// Removes a host's namespace, and with it its veth pair.
    func detach(_ namespace: String) {
        _ = try? ip(["netns", "del", namespace])
    }

    /// Drops what the host in `namespace` sends to `address` on TCP `port` (its link to etcd, say),
    /// while everything else goes through; `mend` undoes it.
    public func cut(_ host: TestHost, from address: String, port: Int) throws {
        guard let namespace = host.namespace else { throw TestHostError.setup("host \(host.name) has no network namespace") }
        try nft(namespace, """
            table inet medic-cut {
                chain out {
                    type filter hook output priority 0;
                    ip daddr \(address) tcp dport \(port) drop
                }
            }
            """)
    }

    /// Lets the host's traffic through again.
    public func mend(_ host: TestHost) throws {
        guard let namespace = host.namespace else { return }
        try nft(namespace, "delete table inet medic-cut\n")
    }

    private func nft(_ namespace: String, _ script: String) throws {
        let file = NSTemporaryDirectory() + "medic-nft-\(UUID().uuidString)"
        try script.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        try ip(["netns", "exec", namespace, "/usr/sbin/nft", "-f", file])
    }
}

/// Runs `ip` with `arguments`; throws with its output if it fails.
@discardableResult
private func ip(_ arguments: [String]) throws -> String {
    try runProgram("/usr/sbin/ip", arguments)
}
