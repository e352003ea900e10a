/// A playbook for backends behind HAProxy (servers `s1`, `s2`, … of backend `app`, in the order
/// of `units`): a crashed, silent (heartbeat every 50 ms, 3 missed) or unhealthy (probed every
/// 100 ms, 2 failures) backend is taken out of the pool, restarted, verified and returned; a
/// failure is escalated to the journal. `capacity` is `min_in_service`; `extra` is appended.
public func poolPlaybook(
    units: [(unit: String, port: Int)], haproxySocket: String, capacity: String = "50%",
    guards: String = #"{ stabilise: 300ms, backoff: { initial: 100ms }, storm: "100% in 1m" }"#, extra: String = ""
) -> String {
    poolPlaybook(units: units, pool: { "haproxy: \(haproxySocket), backend: app, server: s\($0 + 1), min_in_service: \(capacity)" }, guards: guards, extra: extra)
}

/// The same playbook behind any balancer: `pool` gives the `pool:` mapping's contents for the
/// backend at each index of `units`.
public func poolPlaybook(
    units: [(unit: String, port: Int)], pool: (Int) -> String,
    guards: String = #"{ stabilise: 300ms, backoff: { initial: 100ms }, storm: "100% in 1m" }"#, extra: String = ""
) -> String {
    let targets = units.enumerated().map { index, backend in
        """
          - unit: \(backend.unit)
            pool: { \(pool(index)) }
            heartbeat: { every: 50ms, missed: 3 }
            probe: { http: "http://127.0.0.1:\(backend.port)/health", every: 100ms, timeout: 90ms, failures: 2 }
        """
    }.joined(separator: "\n")
    return """
        playbook: pool-\(units.first?.unit.split(separator: ".").first ?? "none")
        targets:
        \(targets)
        guards: \(guards)
        receivers: { oncall: { journal: crit } }
        on:
          - when: crashed or heartbeat-missed or unhealthy
            do:
              - pool: maint
              - restart: { timeout: 10s }
              - verify: { healthy: within 5s }
              - pool: ready
            escalate:
              - after: failure
                do: [ { notify: oncall } ]
        \(extra)
        """
}
