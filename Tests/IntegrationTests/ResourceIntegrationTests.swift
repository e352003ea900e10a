import Audit
import Foundation
import MedicCore
import Systemd
import TestHost
import Testing

@Suite("Resource limits end to end, on a real systemd", .timeLimit(.minutes(5)))
struct ResourceIntegrationTests {
    @Test("a unit that leaks memory past its limit, held for its duration, is restarted, and the limit clears")
    func memoryLeak() async throws {
        try await withTestHost("leak") { host in
            let manager = try await installAndStart(host, ["leak.service": """
                [Service]
                ExecStart=\(try Paths.backend()) --port \(freePort()) --leak-mb-per-s 100
                """])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: leak
                targets:
                  - unit: leak.service
                guards: { stabilise: 200ms, rate: { restart: 1 in 10m } }
                on:
                  - when: memory > 60MiB for 300ms
                    do: [ restart, { verify: { healthy: within 5s } } ]
                """, arguments: ["--sample-interval", "100ms", "--cgroup-root", host.cgroupDirectory])
            defer { medicd.process.stop() }
            _ = try await manager.startUnit("leak.service")
            // No kernel event for memory here (no memory controller in cgroup2): sampled.
            let sampled = await eventually {
                ((try? medic(["status", "--socket", medicd.socket]).output.contains("memory > 60MiB for 300ms  sampled every 100ms")) ?? false)
            }
            #expect(sampled, "\((try? medic(["status", "--socket", medicd.socket]).output) ?? "")")
            let exceeded = await eventually(timeout: .seconds(10)) {
                ((try? medicd.records(kinds: [.observation]).contains { $0.message.hasPrefix("limit held: memory > 60MiB for 300ms") }) ?? false)
            }
            #expect(exceeded, "\((try? medicd.records().map(\.message)) ?? [])\n\(medicd.process.output)")
            let held = try #require(try medicd.records(kinds: [.observation]).first { $0.message.hasPrefix("limit held") })
            #expect(held.facts["sources"]?.contains("memory=proc") == true, "inside a test host there is no memory controller: \(held.facts)")
            #expect(Double(held.facts["memory_bytes"] ?? "0")! > 60 * 1_048_576)
            #expect(try medicd.records(kinds: [.stepIntent]).contains { $0.step == "restart" })
            #expect(await eventually { ((try? medicd.records(kinds: [.observation]).contains { $0.message.hasPrefix("limit cleared") }) ?? false) })
            let statm = (try? String(contentsOfFile: "/proc/\(medicd.process.pid)/statm", encoding: .utf8))?.split(separator: " ") ?? []
            if statm.count > 1, let pages = Double(statm[1]) {
                print(String(format: "medicd resident memory while sampling and healing: %.1f MiB", pages * 4096 / 1_048_576))
            }
        }
    }

    @Test("a pressure limit is a PSI trigger: found by the kernel's event with sampling an hour apart, healed, and armed again in the restarted unit's new cgroup")
    func pressureByEvent() async throws {
        try await withTestHost("pressure") { host in
            // The host's /run is the test host's directory's run/.
            let spin = host.directory + "/run/spin"
            // Two busy loops on one CPU: one of them always waits, so the unit's tasks stall
            // nearly all the time (PSI cpu "some"), from the moment the test creates `spin`.
            let manager = try await installAndStart(host, ["burner.service": """
                [Service]
                Nice=19
                ExecStart=/bin/sh -c 'while [ ! -e /run/spin ]; do sleep 0.1; done; exec taskset -c 0 sh -c "yes > /dev/null & exec yes > /dev/null"'
                """], start: ["burner.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: stalls
                targets:
                  - unit: burner.service
                guards: { stabilise: 100ms, rate: { restart: 5 in 10m } }
                on:
                  - when: cpu.pressure > 30% for 1s
                    do: [ restart ]
                """, arguments: ["--sample-interval", "1h", "--cgroup-root", host.cgroupDirectory])
            defer { medicd.process.stop() }
            defer { unlink(spin) }

            // Armed once medicd has the unit's cgroup: the status says how the limit is watched.
            let armed = await eventually(timeout: .seconds(10)) { Self.watched(medicd).contains("kernel event: PSI trigger on") }
            #expect(armed, "\(Self.watched(medicd))")
            #expect(Self.watched(medicd).contains("burner.service/cpu.pressure"), "\(Self.watched(medicd))")

            let began = Date()
            FileManager.default.createFile(atPath: spin, contents: nil)
            let held = await eventually(timeout: .seconds(20)) { Self.heldCount(medicd) >= 1 }
            #expect(held, "\((try? medicd.records().map(\.message)) ?? [])\n\(medicd.process.output)")
            let first = try #require(try medicd.records(kinds: [.observation]).first { $0.message.hasPrefix("limit held: cpu.pressure > 30%") })
            #expect(Double(first.facts["cpu_stalled"] ?? "0")! > 0.3, "\(first.facts)")
            #expect(first.facts["cpu_pressure"] != nil, "the kernel's own average beside it: \(first.facts)")
            print(String(format: "stalls began → limit held (for 1s included), sampling an hour apart: %.0f ms", (Double(first.wallMicroseconds) / 1e6 - began.timeIntervalSince1970) * 1000))
            #expect(await eventually { ((try? medicd.records(kinds: [.stepResult]).contains { $0.step == "restart" }) ?? false) })

            // The restarted unit has a new cgroup (the old trigger went with the old one) and
            // stalls again at once: only a trigger armed again can find it, an hour before the
            // next sample.
            let again = await eventually(timeout: .seconds(30)) { Self.heldCount(medicd) >= 2 }
            #expect(again, "\((try? medicd.records().map(\.message)) ?? [])\n\(Self.watched(medicd))")
        }
    }

    @Test("a unit of a slice that used no CPU for twenty rounds, woken and leaking, is caught as soon as it runs, with a figure read then; its sleeping neighbours never fire")
    func quietSliceWakes() async throws {
        try await withTestHost("quiet") { host in
            // Every unit in one slice; the leak's shell stops itself until the test wakes it.
            let manager = try await installAndStart(host, [
                "idle@.service": "[Service]\nSlice=workers.slice\nExecStart=/bin/sleep infinity\n",
                "leak.service": """
                    [Service]
                    Slice=workers.slice
                    ExecStart=/bin/sh -c 'kill -STOP $$$$; exec \(try Paths.backend()) --port \(freePort()) --leak-mb-per-s 100'
                    """,
            ], start: ["idle@1.service", "idle@2.service", "idle@3.service", "leak.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: leak
                targets:
                  - unit: idle@1.service
                  - unit: idle@2.service
                  - unit: idle@3.service
                  - unit: leak.service
                guards: { stabilise: 200ms, rate: { restart: 1 in 10m } }
                on:
                  - when: memory > 60MiB for 300ms
                    do: [ restart ]
                """, arguments: ["--sample-interval", "100ms", "--cgroup-root", host.cgroupDirectory])
            defer { medicd.process.stop() }
            #expect(await eventually { Self.watched(medicd).contains("memory > 60MiB for 300ms  sampled every 100ms") }, "\(Self.watched(medicd))")
            // Twenty rounds with every process of the slice asleep.
            try await Task.sleep(for: .seconds(2))

            try await manager.killUnit("leak.service", signal: SIGCONT)
            let exceeded = await eventually(timeout: .seconds(10)) {
                ((try? medicd.records(kinds: [.observation]).contains { $0.message.hasPrefix("limit held: memory > 60MiB for 300ms") }) ?? false)
            }
            #expect(exceeded, "\((try? medicd.records().map(\.message)) ?? [])\n\(medicd.process.output)")
            let held = try #require(try medicd.records(kinds: [.observation]).first { $0.message.hasPrefix("limit held") })
            #expect(held.target == "leak.service", "\(held.facts)")
            #expect(Double(held.facts["memory_bytes"] ?? "0")! > 60 * 1_048_576, "read after it woke: \(held.facts)")
            #expect(await eventually { ((try? medicd.records(kinds: [.stepResult]).contains { $0.step == "restart" }) ?? false) })
            let others = try medicd.records(kinds: [.observation]).filter { $0.target?.hasPrefix("idle@") == true && $0.message.hasPrefix("limit") }
            #expect(others.isEmpty, "the sleeping units stay below their limit: \(others.map(\.message))")
        }
    }

    private static func watched(_ medicd: RunningMedicd) -> String {
        (try? medic(["status", "--socket", medicd.socket]).output) ?? ""
    }

    private static func heldCount(_ medicd: RunningMedicd) -> Int {
        ((try? medicd.records(kinds: [.observation]).filter { $0.message.hasPrefix("limit held: cpu.pressure > 30%") }.count) ?? 0)
    }
}
