import MedicCore
import Yams

extension PlaybookReader {
    static let targetKeys = ["unit", "host", "peers", "pool", "probe", "heartbeat", "limits", "depends_on"]

    /// `- unit: web@*.service` with options, `- host` / `- host: { limits: … }`, or
    /// `- peers: "*"` (the fleet's other hosts, by a glob of their names).
    mutating func target(_ node: Node) -> TargetSpec? {
        if case .scalar(let scalar) = node, scalar.string == "host" { return TargetSpec(selector: .host) }
        guard let keys = nodes.mapping(node, what: "a target", allowed: Self.targetKeys) else { return nil }
        if let peers = keys["peers"] {
            guard keys.count == 1 else {
                nodes.report(node, "a 'peers' target takes nothing else: each peer's pool servers come from its registration in the fleet")
                return nil
            }
            guard let pattern = nodes.string(peers.value, what: "'peers' (a glob of fleet host names, e.g. \"*\")") else { return nil }
            guard !pattern.isEmpty, !pattern.contains("/") else {
                nodes.report(peers.value, "'peers' must be a glob of fleet host names without '/', e.g. \"*\" or \"web*\"; found '\(pattern)'")
                return nil
            }
            return TargetSpec(selector: .peers(pattern))
        }
        let selector: TargetSelector
        switch (keys["unit"], keys["host"]) {
        case (let unit?, nil):
            guard let name = nodes.string(unit.value, what: "'unit'") else { return nil }
            if let problem = UnitName.problem(with: name) {
                nodes.report(unit.value, "'\(name)' is not a valid unit name: \(problem)")
                return nil
            }
            selector = .unit(name)
        case (nil, _?):
            selector = .host
        case (_?, _?):
            nodes.report(node, "a target is either a 'unit' or the 'host', not both")
            return nil
        case (nil, nil):
            nodes.report(node, "a target needs 'unit: NAME' (a unit or a glob such as web@*.service), 'host', or 'peers: GLOB' (the fleet's other hosts)")
            return nil
        }
        var spec = TargetSpec(selector: selector)
        if let pool = keys["pool"]?.value { spec.pool = poolMembership(pool) }
        if let probe = keys["probe"]?.value {
            spec.probe = self.probe(probe)
            if selector.isPattern { nodes.report(probe, "a probe needs one unit, not a glob: it has one address") }
        }
        if let heartbeat = keys["heartbeat"]?.value {
            spec.heartbeat = self.heartbeat(heartbeat)
            if selector.isPattern { nodes.report(heartbeat, "a heartbeat needs one unit, not a glob") }
        }
        if let limits = keys["limits"]?.value { spec.limits = self.limits(limits) }
        if let depends = keys["depends_on"]?.value, let items = nodes.sequence(depends, what: "'depends_on'") {
            for item in items {
                guard let name = nodes.string(item, what: "a dependency") else { continue }
                if let problem = UnitName.problem(with: name) {
                    nodes.report(item, "'\(name)' is not a valid unit name: \(problem)")
                } else {
                    spec.dependsOn.append(name)
                }
            }
        }
        if selector == .host, spec.probe != nil || spec.heartbeat != nil || !spec.dependsOn.isEmpty {
            nodes.report(node, "the host target takes only 'limits' and 'pool'")
        }
        return spec
    }

    /// `pool:`: the balancer (`haproxy: SOCKET`; `varnish: HOST:PORT` with `secret: FILE`; or
    /// `nginx: UPSTREAM FILE` with `config:` and `pid:`), the backend (Varnish: the director;
    /// nginx: the upstream) and the server (Varnish: the backend; nginx: its address).
    private mutating func poolMembership(_ node: Node) -> PoolMembership? {
        let balancers = ["haproxy", "varnish", "nginx"]
        guard let keys = nodes.mapping(node, what: "'pool'", allowed: balancers + ["secret", "config", "pid", "backend", "server", "min_in_service"], required: ["backend", "server"])
        else { return nil }
        let given = balancers.filter { keys[$0] != nil }
        guard given.count == 1, let kind = given.first, let addressNode = keys[kind]?.value,
              let address = nodes.string(addressNode, what: "'\(kind)'")
        else {
            nodes.report(node, "a pool names exactly one balancer: haproxy: ITS ADMIN SOCKET, varnish: ITS CLI ADDRESS (with secret: ITS SECRET FILE), or nginx: THE UPSTREAM FILE MEDIC KEEPS")
            return nil
        }
        guard let backend = keys["backend"].flatMap({ nodes.string($0.value, what: "'backend'") }),
              let server = keys["server"].flatMap({ nodes.string($0.value, what: "'server'") })
        else { return nil }
        for (key, owner) in [("secret", "varnish"), ("config", "nginx"), ("pid", "nginx")] where kind != owner {
            if let found = keys[key] { nodes.report(found.key, "'\(key)' belongs to \(owner == "nginx" ? "an nginx" : "a Varnish") pool; this one is \(kind)'s") }
        }
        let balancer: PoolMembership.Balancer
        switch kind {
        case "varnish":
            guard let secret = keys["secret"].flatMap({ nodes.string($0.value, what: "'secret' (Varnish's -S file)") }) else {
                nodes.report(node, "a Varnish pool needs 'secret:', the secret file varnishd was started with (-S), e.g. /etc/varnish/secret")
                return nil
            }
            if !secret.hasPrefix("/") { nodes.report(keys["secret"]!.value, "'secret' must be an absolute path, e.g. /etc/varnish/secret; found '\(secret)'") }
            if address.hasPrefix("/") || address.split(separator: ":").last.flatMap({ Int($0) }) == nil {
                nodes.report(addressNode, "'varnish' is Varnish's CLI address (varnishd -T): HOST:PORT, e.g. 127.0.0.1:6082; found '\(address)'")
            }
            balancer = .varnish(cli: address, secretFile: secret)
        case "nginx":
            let config = keys["config"].flatMap { nodes.string($0.value, what: "'config'") } ?? "/etc/nginx/nginx.conf"
            let pid = keys["pid"].flatMap { nodes.string($0.value, what: "'pid'") } ?? "/run/nginx.pid"
            for (key, path, example) in [("nginx", address, "/etc/nginx/medic/app.servers"), ("config", config, "/etc/nginx/nginx.conf"), ("pid", pid, "/run/nginx.pid")] where !path.hasPrefix("/") {
                nodes.report(keys[key]?.value, "'\(key)' must be an absolute path, e.g. \(example); found '\(path)'")
            }
            if server.contains(where: { $0.isWhitespace || $0 == ";" || $0 == "#" }) {
                nodes.report(keys["server"]?.value, "an nginx pool's 'server' is the address of its server line, e.g. 127.0.0.1:8081 or unix:/run/app.sock; found '\(server)'")
            }
            balancer = .nginx(upstreamFile: address, config: config, pidFile: pid)
        default:
            if !address.hasPrefix("/"), address.split(separator: ":").last.flatMap({ Int($0) }) == nil {
                nodes.report(addressNode, "'haproxy' is HAProxy's admin socket: an absolute path (/run/haproxy/admin.sock) or HOST:PORT; found '\(address)'")
            }
            balancer = .haproxy(socket: address)
        }
        var membership = PoolMembership(balancer: balancer, backend: backend, server: server)
        if let minimum = keys["min_in_service"]?.value, let text = nodes.string(minimum, what: "'min_in_service'") {
            if let share = Quantity.parsePercent(text), share > 0, share <= 1 {
                membership.capacity = PoolCapacity(share: share, count: 1)
            } else if let count = Int(text), count >= 0 {
                membership.capacity = PoolCapacity(share: 0, count: count)
            } else {
                nodes.report(minimum, "'min_in_service' must be a share of the backend's servers such as 50%, or a number of servers such as 2; found '\(text)'")
            }
        }
        return membership
    }

    private mutating func probe(_ node: Node) -> Probe? {
        let kinds = ["http", "tcp", "exec"]
        guard let keys = nodes.mapping(node, what: "'probe'", allowed: kinds + ["every", "timeout", "failures", "successes", "expect", "latency"]) else { return nil }
        let given = kinds.filter { keys[$0] != nil }
        guard given.count == 1, let name = given.first, let value = keys[name]?.value else {
            nodes.report(node, "a probe is exactly one of http: URL, tcp: HOST:PORT or exec: [COMMAND, ARGS…]")
            return nil
        }
        let kind: Probe.Kind
        switch name {
        case "http":
            guard let url = nodes.string(value, what: "'http'") else { return nil }
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                nodes.report(value, "'\(url)' is not an http:// or https:// URL")
                return nil
            }
            kind = .http(url: url)
        case "tcp":
            guard let address = nodes.string(value, what: "'tcp'") else { return nil }
            guard address.split(separator: ":").last.flatMap({ Int($0) }) != nil else {
                nodes.report(value, "'\(address)' is not HOST:PORT")
                return nil
            }
            kind = .tcp(address: address)
        default:
            guard let command = stringList(value, what: "'exec'"), !command.isEmpty else { return nil }
            kind = .exec(command: command)
        }
        let every = keys["every"].flatMap { nodes.duration($0.value, what: "'every'") } ?? .seconds(5)
        let timeout = keys["timeout"].flatMap { nodes.duration($0.value, what: "'timeout'") } ?? .seconds(2)
        if timeout > every, let t = keys["timeout"] { nodes.report(t.value, "the probe's timeout is longer than its interval ('every')") }
        let failures = keys["failures"].flatMap { nodes.count($0.value, what: "'failures'") } ?? 3
        let successes = keys["successes"].flatMap { nodes.count($0.value, what: "'successes'") } ?? 1
        let expect = keys["expect"].flatMap { nodes.string($0.value, what: "'expect' (text the body must contain)") }
        let latency = keys["latency"].flatMap { nodes.duration($0.value, what: "'latency'") }
        if name != "http", let extra = keys["expect"] ?? keys["latency"] {
            nodes.report(extra.key, "'expect' and 'latency' apply to http probes only")
        }
        let minimum: Duration = .milliseconds(100)
        if every < minimum, let e = keys["every"] { nodes.report(e.value, "probes run at most every 100ms, or they would load the host") }
        return Probe(kind: kind, every: every, timeout: timeout, failures: failures, successes: successes, expect: expect, latency: latency)
    }

    private mutating func heartbeat(_ node: Node) -> Heartbeat? {
        guard let keys = nodes.mapping(node, what: "'heartbeat'", allowed: ["every", "missed"], required: ["every"]),
              let every = keys["every"].flatMap({ nodes.duration($0.value, what: "'every'") })
        else { return nil }
        let missed = keys["missed"].flatMap { nodes.count($0.value, what: "'missed'") } ?? 3
        return Heartbeat(every: every, missed: missed)
    }

    /// `limits: { memory: 1.5GiB for 1m, cpu: 90% for 5m, fds: 90% }`.
    private mutating func limits(_ node: Node) -> [ResourceLimit] {
        guard case .mapping(let mapping) = node else {
            nodes.report(node, "'limits' must be a mapping such as { memory: 1.5GiB for 1m, cpu: 90% for 5m }")
            return []
        }
        var result: [ResourceLimit] = []
        for (key, value) in mapping {
            guard case .scalar(let k) = key, case .scalar(let v) = value else {
                nodes.report(key, "a limit is 'RESOURCE: THRESHOLD [for DURATION]'")
                continue
            }
            switch ConditionParser.parse("\(k.string) > \(v.string)") {
            case .success(.trigger(.limit(let limit))):
                result.append(limit)
            case .success:
                nodes.report(key, "'\(k.string)' is not a resource; limits are memory, cpu, fds, tasks, memory.pressure, cpu.pressure, io.pressure and disk PATH")
            case .failure(let failure):
                let known = ["memory", "cpu", "fds", "tasks", "memory.pressure", "cpu.pressure", "io.pressure"]
                if !known.contains(k.string), !k.string.hasPrefix("disk ") {
                    var message = "unknown resource '\(k.string)'"
                    if let close = suggestion(for: k.string, among: known) { message += " (did you mean '\(close)'?)" }
                    nodes.report(key, message + "; resources: \(known.joined(separator: ", ")), disk PATH")
                } else {
                    nodes.report(value, offset: max(0, failure.offset - k.string.count - 3), failure.message)
                }
            }
        }
        return result
    }

    mutating func stringList(_ node: Node, what: String) -> [String]? {
        guard let items = nodes.sequence(node, what: what) else { return nil }
        let strings = items.compactMap { nodes.string($0, what: "an argument of \(what)") }
        return strings.count == items.count ? strings : nil
    }
}
