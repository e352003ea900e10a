import Foundation
import MedicCore
import Playbooks
import Testing

private func parse(_ text: String) -> Result<Playbook, Diagnostics> {
    PlaybookParser.parse(data: Array(text.utf8), file: "test.yaml")
}

private func problems(_ text: String) -> [String] {
    guard case .failure(let diagnostics) = parse(text) else { return [] }
    return diagnostics.all.map(\.description)
}

@Suite("Playbook parsing")
struct PlaybookParserTests {
    @Test("a valid playbook becomes the model, with defaults filled in")
    func valid() throws {
        let playbook = try parse("""
            playbook: web
            targets:
              - unit: web@*.service
              - unit: api.service
                probe: { http: "http://127.0.0.1:8081/health" }
            on:
              - when: crashed(signal, oom-kill) or unhealthy
                do:
                  - restart
                  - verify: { healthy: within 1m30s, for: 5s }
                  - kill: SIGTERM
            """).get()
        #expect(playbook.name == "web")
        #expect(playbook.targets.map(\.selector) == [.unit("web@*.service"), .unit("api.service")])
        #expect(playbook.target(for: "web@3.service")?.selector == .unit("web@*.service"))
        #expect(playbook.target(for: "api.service")?.probe?.failures == 3)
        let rule = try #require(playbook.rules.first)
        #expect(rule.condition == .or(.trigger(.crashed([.signal, .oomKill])), .trigger(.unhealthy)))
        #expect(rule.steps == [Step(.restart), Step(.verify(within: .seconds(90), stable: .seconds(5)), timeout: .seconds(95)), Step(.kill(signal: 15))])
        #expect(rule.steps[0].timeout == .seconds(30))
        #expect(playbook.guards.rates[.restart] == RateLimit(count: 3, window: .seconds(600)))
        #expect(playbook.contentHash.count == 64)
    }

    @Test("conditions combine triggers, history and the host's pressure")
    func conditions() throws {
        let playbook = try parse("""
            playbook: leak
            targets: [ { unit: cache.service } ]
            on:
              - when: memory > 1.5GiB for 1m and not host.pressure.memory > 40%
                do: [ restart ]
              - when: crashed and restarts > 3 in 10m
                do: [ stop ]
            """).get()
        let leak = ResourceLimit(resource: .memory, comparison: .greater, threshold: 1.5 * 1_073_741_824, isPercentage: false, holdFor: .seconds(60))
        #expect(playbook.rules[0].condition == .and(.trigger(.limit(leak)), .not(.compare(.hostMemoryPressure, .greater, 0.4, within: nil))))
        #expect(playbook.rules[1].condition == .and(.trigger(.crashed(nil)), .compare(.restarts, .greater, 3, within: .seconds(600))))
    }

    @Test("pressure limits: the share of time a unit's tasks stalled on memory, CPU or IO, as a trigger and in a target's limits")
    func pressureLimits() throws {
        let playbook = try parse("""
            playbook: stalls
            targets:
              - unit: db.service
                limits: { memory.pressure: 20% for 30s }
            on:
              - when: cpu.pressure > 50% for 10s or io.pressure >= 40%
                do: [ restart ]
            """).get()
        let cpu = ResourceLimit(resource: .pressure(.cpu), comparison: .greater, threshold: 0.5, isPercentage: true, holdFor: .seconds(10))
        let io = ResourceLimit(resource: .pressure(.io), comparison: .greaterOrEqual, threshold: 0.4, isPercentage: true, holdFor: nil)
        #expect(playbook.rules[0].condition == .or(.trigger(.limit(cpu)), .trigger(.limit(io))))
        #expect(cpu.description == "cpu.pressure > 50% for 10s")
        let memory = ResourceLimit(resource: .pressure(.memory), comparison: .greater, threshold: 0.2, isPercentage: true, holdFor: .seconds(30))
        #expect(playbook.targets[0].limits == [memory])
    }

    @Test("alert triggers: the alert's name and Prometheus's label matchers; a bad matcher is named at its place")
    func alertTriggers() throws {
        let playbook = try parse("""
            playbook: alerts
            targets:
              - unit: web.service
            on:
              - when: alert "HighErrorRate" { job = "web", env != "test", severity =~ "page|critical", instance !~ "canary.*" } or alert 'Down'
                do: [ restart ]
            """).get()
        guard case .or(.trigger(.alert(let rule)), .trigger(.alert(let down))) = playbook.rules[0].condition else {
            Issue.record("\(playbook.rules[0].condition)")
            return
        }
        #expect(rule.name == "HighErrorRate" && rule.matchers.count == 4 && down == AlertRule(name: "Down"))
        #expect(rule.description == #"alert "HighErrorRate" { job = "web", env != "test", severity =~ "page|critical", instance !~ "canary.*" }"#)
        let base = ["alertname": "HighErrorRate", "job": "web", "env": "prod", "severity": "critical", "instance": "web1:8080"]
        #expect(rule.matches(base))
        #expect(!rule.matches(base.merging(["job": "api"]) { $1 }))
        #expect(!rule.matches(base.merging(["env": "test"]) { $1 }))
        #expect(!rule.matches(base.merging(["severity": "critical-ish"]) { $1 }), "a regular expression matches the whole value")
        #expect(!rule.matches(base.merging(["instance": "canary-1:8080"]) { $1 }))
        #expect(!rule.matches(base.merging(["alertname": "Other"]) { $1 }))
        #expect(rule.matches(base.filter { $0.key != "env" }), "an absent label is empty, and empty is not 'test'")

        func problem(_ when: String) -> String {
            problems("playbook: a\ntargets:\n  - unit: web.service\non:\n  - when: \(when)\n    do: [ restart ]\n").joined(separator: "\n")
        }
        #expect(problem("alert HighErrorRate").contains("alert needs the alert's name in quotes"))
        #expect(problem(#"alert "X" { job == "web" }"#).contains("expected =, !=, =~ or !~ after 'job', found '=='"))
        #expect(problem(#"alert "X" { job = web }"#).contains("the value of 'job' goes in quotes"))
        #expect(problem(#"alert "X" { severity =~ "(" }"#).contains("'(' is not a valid regular expression"))
        #expect(problem(#"alert "X" { job = "web" "#).contains("expected '}'"))
        #expect(problem(#"alert "X" { job = "web" }"#).isEmpty)
    }

    @Test("every problem is reported, each at its line and column")
    func allProblems() {
        let found = problems("""
            playbook: web
            targets:
              - unit: web
              - unti: x.service
            on:
              - when: crashd
                do: []
              - when: crashed
                do:
                  - restart: { timeout: soon, retries: 3 }
                  - verify: {}
            """)
        #expect(found.contains("test.yaml:3:11: 'web' is not a valid unit name: it needs a type suffix, e.g. 'web.service'"))
        #expect(found.contains { $0.hasPrefix("test.yaml:4:5: unknown key 'unti' in a target (did you mean 'unit'?)") })
        #expect(found.contains { $0.hasPrefix("test.yaml:6:11: unknown trigger or metric 'crashd' (did you mean 'crashed'?)") })
        #expect(found.contains("test.yaml:7:9: 'do' is empty; give at least one step"))
        #expect(found.contains { $0.hasPrefix("test.yaml:10:29: 'timeout': 'soon' is not a duration") })
        #expect(found.contains { $0.hasPrefix("test.yaml:10:35: unknown key 'retries' in 'restart'") })
        #expect(found.contains("test.yaml:11:17: 'verify' is missing required key 'healthy'"))
    }

    @Test("remedies: receivers, pools, exec and reboot are checked, each problem at its place")
    func remedyProblems() {
        let found = problems("""
            playbook: web
            targets:
              - unit: web@*.service
                pool: { haproxy: admin.sock, backend: web, server: "web%i", min_in_service: lots }
              - unit: api.service
            receivers:
              oncall: { webhook: "ftp://x", format: teams }
              log: { journal: loud }
              pager: { journal: crit }
            on:
              - when: crashed
                do:
                  - pool: maint
                  - exec: { command: "/usr/local/bin/fix --now", user: nobody }
                  - exec: [fix.sh]
                  - notify: pagr
                  - reboot: { at_most: often }
            """)
        #expect(found.contains("test.yaml:4:81: 'min_in_service' must be a share of the backend's servers such as 50%, or a number of servers such as 2; found 'lots'"), "\(found)")
        #expect(found.contains("test.yaml:4:22: 'haproxy' is HAProxy's admin socket: an absolute path (/run/haproxy/admin.sock) or HOST:PORT; found 'admin.sock'"))
        #expect(found.contains("test.yaml:5:5: target api.service has no 'pool:' (haproxy, backend, server), but the 'pool' step at line 13 acts on its pool"))
        #expect(found.contains("test.yaml:7:23: 'ftp://x' is not an http:// or https:// URL"))
        #expect(found.contains("test.yaml:8:19: 'loud' is not a journal priority; one of emerg, alert, crit, err, warning, notice, info, debug"))
        #expect(found.contains { $0.hasPrefix("test.yaml:14:27: 'command' must be a list of arguments, never a shell string") })
        #expect(found.contains("test.yaml:15:15: the program 'fix.sh' must be an absolute path"))
        #expect(found.contains("test.yaml:16:17: 'notify' names no receiver 'pagr' (did you mean 'pager'?); receivers: journal, pager (define them under 'receivers:' here or in medic.yaml)"))
        #expect(found.contains("test.yaml:17:28: 'at_most' must be 'N in DURATION', e.g. '3 in 10m'; found 'often'"))
    }

    @Test("a reboot's fleet budget: how many hosts at once, its name, how long to wait for a slot; the wait counts in the step's timeout")
    func rebootBudget() throws {
        let playbook = try parse("""
            playbook: p
            targets: [ { unit: a.service } ]
            on:
              - when: crashed
                do:
                  - reboot: { at_most: 1 in 6h, fleet_budget: 2, budget: web-reboots, budget_wait: 10m }
                  - reboot
            """).get()
        let steps = playbook.rules[0].steps
        #expect(steps[0].action == .reboot(limit: RateLimit(count: 1, window: .seconds(21_600)), budget: FleetBudget(name: "web-reboots", slots: 2, wait: .seconds(600))))
        #expect(steps[0].timeout == .seconds(600) + StepKind.reboot.defaultTimeout)
        #expect(steps[1].action == .reboot(limit: RateLimit(count: 1, window: .seconds(21_600)), budget: nil))
        let found = problems("""
            playbook: p
            targets: [ { unit: a.service } ]
            on:
              - when: crashed
                do:
                  - reboot: { fleet_budget: 0 }
                  - reboot: { budget: x }
            """)
        #expect(found.contains { $0.hasPrefix("test.yaml:6:33: 'fleet_budget' must be how many hosts of the fleet may reboot at once") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("test.yaml:7:19: 'budget' needs 'fleet_budget: N' beside it") }, "\(found)")
    }

    @Test("a pool step's fleet budget: how many hosts may have servers out at once, per named pool; returning them needs none")
    func poolBudget() throws {
        let playbook = try parse("""
            playbook: p
            targets: [ { unit: a.service, pool: { haproxy: /run/haproxy.sock, backend: app, server: a } } ]
            on:
              - when: crashed
                do:
                  - pool: { state: drain, fleet_budget: 2, budget: app-pool, budget_wait: 1m }
                  - pool: maint
                  - pool: { state: ready }
            """).get()
        let steps = playbook.rules[0].steps
        #expect(steps[0].action == .pool(.drain, budget: FleetBudget(name: "app-pool", slots: 2, wait: .seconds(60))))
        #expect(steps[0].timeout == .seconds(60) + StepKind.pool.defaultTimeout)
        #expect(steps[1].action == .pool(.maint) && steps[2].action == .pool(.ready))
        let found = problems("""
            playbook: p
            targets: [ { unit: a.service, pool: { haproxy: /run/haproxy.sock, backend: app, server: a } } ]
            on:
              - when: crashed
                do:
                  - pool: { state: ready, fleet_budget: 1 }
                  - pool: { state: maint, budget_wait: 5s }
            """)
        #expect(found.contains { $0.hasPrefix("test.yaml:6:31: a fleet budget limits taking servers out (drain, maint); returning them (ready) needs none") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("test.yaml:7:31: 'budget_wait' needs 'fleet_budget: N' beside it (how many hosts may have servers out of the pool at once)") }, "\(found)")
    }

    @Test("a pool behind Varnish differs by its balancer line: its CLI address and secret file; wrong ones are named")
    func varnishPool() throws {
        let playbook = try parse("""
            playbook: p
            targets: [ { unit: a.service, pool: { varnish: 127.0.0.1:6082, secret: /etc/varnish/secret, backend: app, server: web1 } } ]
            on:
              - when: crashed
                do: [ { pool: maint }, restart, { pool: ready } ]
            """).get()
        #expect(playbook.targets[0].pool == PoolMembership(balancer: .varnish(cli: "127.0.0.1:6082", secretFile: "/etc/varnish/secret"), backend: "app", server: "web1"))
        let found = problems("""
            playbook: p
            targets:
              - { unit: a.service, pool: { varnish: 127.0.0.1:6082, backend: app, server: web1 } }
              - { unit: b.service, pool: { varnish: /run/varnish.sock, secret: secret, backend: app, server: web2 } }
              - { unit: c.service, pool: { haproxy: /run/h.sock, varnish: 127.0.0.1:6082, backend: app, server: web3 } }
              - { unit: d.service, pool: { haproxy: /run/h.sock, secret: /etc/varnish/secret, backend: app, server: web4 } }
            on:
              - when: crashed
                do: [ { pool: maint } ]
            """)
        #expect(found.contains { $0.hasPrefix("test.yaml:3:30: a Varnish pool needs 'secret:'") }, "\(found)")
        #expect(found.contains { $0.contains("'secret' must be an absolute path") && $0.hasPrefix("test.yaml:4:") }, "\(found)")
        #expect(found.contains { $0.contains("'varnish' is Varnish's CLI address (varnishd -T): HOST:PORT") && $0.hasPrefix("test.yaml:4:") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("test.yaml:5:30: a pool names exactly one balancer") }, "\(found)")
        #expect(found.contains { $0.contains("'secret' belongs to a Varnish pool") && $0.hasPrefix("test.yaml:6:") }, "\(found)")
    }

    @Test("a pool behind nginx differs by its balancer line: the upstream file Medic keeps, nginx's config and PID file (Debian's by default)")
    func nginxPool() throws {
        let playbook = try parse("""
            playbook: p
            targets:
              - { unit: a.service, pool: { nginx: /etc/nginx/medic/app.servers, backend: app, server: "127.0.0.1:8081" } }
              - { unit: b.service, pool: { nginx: /etc/nginx/medic/app.servers, config: /srv/nginx.conf, pid: /srv/nginx.pid, backend: app, server: "127.0.0.1:8082" } }
            on:
              - when: crashed
                do: [ { pool: maint }, restart, { pool: ready } ]
            """).get()
        #expect(playbook.targets[0].pool == PoolMembership(balancer: .nginx(upstreamFile: "/etc/nginx/medic/app.servers", config: "/etc/nginx/nginx.conf", pidFile: "/run/nginx.pid"), backend: "app", server: "127.0.0.1:8081"))
        #expect(playbook.targets[1].pool?.balancer == .nginx(upstreamFile: "/etc/nginx/medic/app.servers", config: "/srv/nginx.conf", pidFile: "/srv/nginx.pid"))
        let found = problems("""
            playbook: p
            targets:
              - { unit: a.service, pool: { nginx: app.servers, backend: app, server: "127.0.0.1:8081" } }
              - { unit: b.service, pool: { nginx: /etc/nginx/app.servers, backend: app, server: "127.0.0.1:8082; server evil" } }
              - { unit: c.service, pool: { haproxy: /run/h.sock, config: /etc/nginx/nginx.conf, backend: app, server: web3 } }
            on:
              - when: crashed
                do: [ { pool: maint } ]
            """)
        #expect(found.contains { $0.hasPrefix("test.yaml:3:39: 'nginx' must be an absolute path") }, "\(found)")
        #expect(found.contains { $0.contains("an nginx pool's 'server' is the address of its server line") && $0.hasPrefix("test.yaml:4:") }, "\(found)")
        #expect(found.contains { $0.contains("'config' belongs to an nginx pool; this one is haproxy's") && $0.hasPrefix("test.yaml:5:") }, "\(found)")
    }

    @Test("a cache step bans one line of a ban expression, for targets behind Varnish only")
    func cacheStep() throws {
        let playbook = try parse("""
            playbook: p
            targets: [ { unit: a.service, pool: { varnish: 127.0.0.1:6082, secret: /etc/varnish/secret, backend: app, server: web1 } } ]
            on:
              - when: crashed
                do: [ restart, { cache: { ban: 'req.url ~ "^/api/"' } } ]
            """).get()
        #expect(playbook.rules[0].steps[1] == Step(.cache(ban: "req.url ~ \"^/api/\"")))
        #expect(playbook.rules[0].steps[1].isDestructive)
        let found = problems("""
            playbook: p
            targets: [ { unit: a.service, pool: { haproxy: /run/h.sock, backend: app, server: web1 } } ]
            on:
              - when: crashed
                do: [ { cache: { ban: "req.url ~ /\\nban.discard" } }, { cache: { ban: 'rm -rf /' } }, cache ]
            """)
        #expect(found.contains { $0.hasPrefix("test.yaml:5:28: 'ban' must be one line of Varnish's ban expression") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("test.yaml:5:76: 'ban' must be one line") && $0.contains("found 'rm -rf /'") }, "\(found)")
        #expect(found.contains { $0.contains("'cache' needs what to ban") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("test.yaml:2:12: target a.service is not behind Varnish") && $0.contains("'cache' step at line 5") }, "\(found)")
    }

    @Test("a pool server named with %i follows the instance of a templated unit")
    func poolInstance() throws {
        let playbook = try parse("""
            playbook: web
            targets:
              - unit: web@*.service
                pool: { haproxy: /run/haproxy/admin.sock, backend: web, server: "web%i", min_in_service: 2 }
            on:
              - when: crashed
                do: [ { pool: maint }, restart ]
            """).get()
        let pool = try #require(playbook.target(for: "web@3.service")?.pool)
        #expect(pool.resolved(for: "web@3.service").server == "web3")
        #expect(pool.capacity.required(of: 3) == 2 && pool.capacity.required(of: 10) == 2)
        #expect(PoolCapacity().required(of: 3) == 2 && PoolCapacity().required(of: 1) == 1 && PoolCapacity().required(of: 4) == 2)
    }

    @Test("durations must carry units", arguments: [
        ("500ms", 500), ("30s", 30_000), ("10m", 600_000), ("6h", 21_600_000), ("1d", 86_400_000), ("1m30s", 90_000), ("1.5s", 1500),
    ])
    func durations(text: String, milliseconds: Int64) {
        #expect(DurationText.parse(text)?.milliseconds == milliseconds)
    }

    @Test("bare numbers and unknown units are not durations", arguments: ["5", "", "10 minutes", "s", "5y", "-3s", "1e9s"])
    func badDurations(text: String) {
        #expect(DurationText.parse(text) == nil)
    }

    @Test("hostile files are refused quickly with a clear message", arguments: [
        ("empty", Array("  \n".utf8), "file is empty"),
        ("binary", [0x7f, 0x45, 0x4c, 0x46, 0x00, 0x01], "file is binary"),
        ("not UTF-8", [0x70, 0x3a, 0x20, 0xff, 0xfe], "not valid UTF-8"),
        ("too large", Array(repeating: UInt8(ascii: "#"), count: (1 << 20) + 1), "larger than"),
        ("alias bomb", Array(aliasBomb.utf8), "alias bomb"),
        ("deep nesting", Array((String(repeating: "[", count: 200) + String(repeating: "]", count: 200)).utf8), "levels"),
        ("not a mapping", Array("- just\n- a list\n".utf8), "must be a mapping"),
    ])
    func hostile(name: String, bytes: [UInt8], expected: String) {
        let started = ContinuousClock.now
        let result = PlaybookParser.parse(data: bytes, file: "hostile.yaml")
        #expect(ContinuousClock.now - started < .seconds(2), "\(name) took too long")
        guard case .failure(let diagnostics) = result else {
            Issue.record("\(name) was accepted")
            return
        }
        #expect(diagnostics.description.contains(expected), "\(name): \(diagnostics)")
    }
}

/// The billion laughs, in YAML.
let aliasBomb = """
    a: &a ["x","x","x","x","x","x","x","x","x"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    """

/// Broken playbooks, each with the position and the start of the message it must produce.
let brokenCorpus: [(name: String, yaml: String, expected: String)] = [
    ("bad size", "playbook: p\ntargets: [ { unit: a.service } ]\non:\n  - when: memory > 1.5Gb for 1m\n    do: [restart]\n", "4:20: '1.5Gb' is not a valid threshold for memory"),
    ("bad percentage", "playbook: p\ntargets: [ { unit: a.service } ]\non:\n  - when: cpu > 190%\n    do: [restart]\n", "4:17: '190%' is not a valid threshold for cpu"),
    ("pressure as a count", "playbook: p\ntargets: [ { unit: a.service } ]\non:\n  - when: io.pressure > 3\n    do: [restart]\n", "4:25: '3' is not a valid threshold for io.pressure; write a percentage of the time stalled such as 20%"),
    ("pressure limit misspelt", "playbook: p\ntargets:\n  - unit: a.service\n    limits: { cpu.presure: 50% }\non:\n  - when: cpu > 90%\n    do: [restart]\n", "4:15: unknown resource 'cpu.presure' (did you mean 'cpu.pressure'?)"),
    ("unknown crash kind", "playbook: p\ntargets: [ { unit: a.service } ]\non:\n  - when: crashed(segfault)\n    do: [restart]\n", "4:19: unknown crash kind 'segfault'"),
    ("count without window", "playbook: p\ntargets: [ { unit: a.service } ]\non:\n  - when: crashed and restarts > 3\n    do: [restart]\n", "4:23: restarts counts need a window"),
    ("no trigger", "playbook: p\ntargets: [ { unit: a.service } ]\non:\n  - when: restarts > 3 in 10m\n    do: [restart]\n", "4:11: 'restarts > 3 in 10m' has no trigger"),
    ("unknown step", "playbook: p\ntargets: [ { unit: a.service } ]\non:\n  - when: crashed\n    do: [ reboto ]\n", "5:11: unknown step 'reboto' (did you mean 'reboot'?)"),
    ("kill without signal", "playbook: p\ntargets: [ { unit: a.service } ]\non:\n  - when: crashed\n    do: [ { kill: SIGFOO } ]\n", "5:19: 'SIGFOO' is not a signal"),
    ("exec as a shell string", "playbook: p\ntargets: [ { unit: a.service } ]\non:\n  - when: crashed\n    do: [ { exec: { command: \"rm -rf /tmp/x\" } } ]\n", "5:31: 'command' must be a list of arguments, never a shell string"),
    ("relative program", "playbook: p\ntargets: [ { unit: a.service } ]\non:\n  - when: crashed\n    do: [ { exec: [ cleanup, --now ] } ]\n", "5:19: the program 'cleanup' must be an absolute path"),
    ("bad pool state", "playbook: p\ntargets: [ { unit: a.service } ]\non:\n  - when: crashed\n    do: [ { pool: drained } ]\n", "5:19: pool state 'drained' is not one of drain, maint, ready"),
    ("unused target", "playbook: p\ntargets:\n  - unit: a.service\n  - host\non:\n  - when: crashed\n    do: [restart]\n", "4:5: target host is used by no trigger"),
    ("trigger without probe", "playbook: p\ntargets: [ { unit: a.service } ]\non:\n  - when: unhealthy\n    do: [restart]\n", "4:5: trigger 'unhealthy' can never fire: it needs a target with a probe"),
    ("escalation loop", "playbook: p\ntargets: [ { unit: a.service } ]\non:\n  - when: crashed\n    do: [restart]\n    escalate:\n      - after: failure\n        do: [restart]\n", "7:9: this escalation restarts the target after every failure"),
    ("duplicate ladder rung", "playbook: p\ntargets: [ { unit: a.service } ]\non:\n  - when: crashed\n    do: [restart]\n    escalate:\n      - after: 2 failures in 1h\n        do: [ { notify: a } ]\n      - after: 2 failures in 1h\n        do: [ { notify: b } ]\n", "9:9: escalation levels 1 and 2 both run after '2 failures in 1h'"),
    ("duplicate key, block", "playbook: p\ntargets:\n  - unit: a.service\n    unit: b.service\non:\n  - when: crashed\n    do: [restart]\n", "4:5: duplicate key 'unit' in a mapping (first at line 3, column 5)"),
    ("duplicate key, flow", "playbook: p\ntargets: [ { unit: a.service, unit: b.service } ]\non:\n  - when: crashed\n    do: [restart]\n", "2:31: duplicate key 'unit' in a mapping (first at line 2, column 14)"),
    ("bad rate", "playbook: p\ntargets: [ { unit: a.service } ]\nguards: { rate: { restart: often } }\non:\n  - when: crashed\n    do: [restart]\n", "3:28: 'rate.restart' must be 'N in DURATION'"),
    ("probe on a glob", "playbook: p\ntargets: [ { unit: a@*.service, probe: { tcp: 127.0.0.1:80 } } ]\non:\n  - when: unhealthy\n    do: [restart]\n", "2:40: a probe needs one unit, not a glob"),
    ("bad probe url", "playbook: p\ntargets: [ { unit: a.service, probe: { http: localhost:80 } } ]\non:\n  - when: unhealthy\n    do: [restart]\n", "2:46: 'localhost:80' is not an http:// or https:// URL"),
]

@Suite("Broken playbooks")
struct BrokenPlaybookTests {
    @Test("each broken playbook gives the expected position and message", arguments: brokenCorpus.map(\.name))
    func corpus(name: String) {
        let entry = brokenCorpus.first { $0.name == name }!
        let found = problems(entry.yaml)
        #expect(found.contains { $0.hasPrefix("test.yaml:" + entry.expected) }, "\(name): \(found)")
    }

    @Test("random mutations of valid playbooks never crash the parser, and every error has a position")
    func mutations() throws {
        let shipped = try FileManager.default.contentsOfDirectory(atPath: playbooksDirectory).filter { $0.hasSuffix(".yaml") }
        var generator = SplitMix64(seed: 20261121)
        var refused = 0
        for name in shipped {
            let lines = try String(contentsOfFile: playbooksDirectory + "/" + name, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            for _ in 0..<150 {
                var mutated = lines
                let index = Int(generator.next() % UInt64(max(1, mutated.count)))
                switch generator.next() % 5 {
                case 0: mutated.remove(at: index)
                case 1: mutated.insert(mutated[index], at: index)
                case 2: mutated[index] = mutated[index].replacingOccurrences(of: ":", with: ": [")
                case 3: mutated = Array(mutated.prefix(index))
                default: mutated[index] = String(mutated[index].shuffled(using: &generator))
                }
                let result = PlaybookParser.parse(data: Array(mutated.joined(separator: "\n").utf8), file: "m.yaml")
                if case .failure(let diagnostics) = result {
                    refused += 1
                    #expect(!diagnostics.all.isEmpty)
                    #expect(diagnostics.all.allSatisfy { $0.line >= 1 && $0.column >= 1 && !$0.message.isEmpty })
                }
            }
        }
        #expect(refused > 0)
    }

    @Test("every shipped playbook validates")
    func shipped() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: playbooksDirectory).filter { $0.hasSuffix(".yaml") }.map { playbooksDirectory + "/" + $0 }
        #expect(files.count >= 8)
        let loaded = PlaybookDirectory.load(files: files)
        #expect(loaded.refused.isEmpty, "\(loaded.refused.map(\.diagnostics))")
    }
}

let playbooksDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path + "/playbooks"
}()

/// A small deterministic random generator, so a failing mutation can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Playbook directories")
struct PlaybookDirectoryTests {
    @Test("a unit claimed by two playbooks is refused in the second file")
    func conflictingTargets() throws {
        let dir = NSTemporaryDirectory() + "/medic-playbooks-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let body = "targets:\n  - unit: web.service\non:\n  - when: crashed\n    do: [restart]\n"
        try ("playbook: a\n" + body).write(toFile: dir + "/a.yaml", atomically: true, encoding: .utf8)
        try ("playbook: b\n" + body).write(toFile: dir + "/b.yaml", atomically: true, encoding: .utf8)
        try "not a playbook".write(toFile: dir + "/notes.txt", atomically: true, encoding: .utf8)
        let loaded = try PlaybookDirectory.load(dir)
        #expect(loaded.playbooks.map(\.name) == ["a"])
        #expect(loaded.refused.count == 1)
        #expect(loaded.refused.first?.diagnostics.description.contains("web.service is already a target of \(dir)/a.yaml") == true)
    }

    @Test("files and directories not owned by root, or writable by group or others, are refused with their mode (StrictModes)")
    func strictModes() throws {
        let dir = NSTemporaryDirectory() + "/medic-strict-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755)
        let body = "targets:\n  - unit: NAME.service\non:\n  - when: crashed\n    do: [restart]\n"
        for name in ["good", "open", "foreign"] {
            try ("playbook: \(name)\n" + body.replacingOccurrences(of: "NAME", with: name)).write(toFile: "\(dir)/\(name).yaml", atomically: true, encoding: .utf8)
        }
        chmod(dir + "/good.yaml", 0o644)
        chmod(dir + "/open.yaml", 0o666)
        chmod(dir + "/foreign.yaml", 0o644)
        chown(dir + "/foreign.yaml", 65534, 65534)
        let loaded = try PlaybookDirectory.load(dir)
        #expect(loaded.playbooks.map(\.name) == ["good"])
        let problems = loaded.refused.map { $0.diagnostics.description }
        #expect(problems.contains { $0.contains("open.yaml is writable by group or others (mode 0666)") && $0.contains("chmod go-w") }, "\(problems)")
        #expect(problems.contains { $0.contains("foreign.yaml is owned by uid 65534 (nobody), not root") }, "\(problems)")
        chmod(dir, 0o777)
        #expect { try PlaybookDirectory.load(dir) } throws: { "\($0)".contains("is writable by group or others (mode 0777)") }
    }

    @Test("a missing directory is an error that names it")
    func missing() {
        #expect(throws: PlaybookDirectory.LoadError.self) { try PlaybookDirectory.load("/nonexistent/medic") }
    }
}
