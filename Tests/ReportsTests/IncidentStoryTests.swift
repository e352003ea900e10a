import Audit
import Foundation
import MedicCore
@testable import Reports
import Testing

@Suite("An incident laid out in time, from its records")
struct IncidentStoryTests {
    private static func time(_ ms: Int64) -> Timestamp { Timestamp(wallMicroseconds: 1_700_000_000_000_000 + ms * 1000, monotonicNanoseconds: 0) }

    private static func story(_ records: [AuditRecord]) async throws -> IncidentStory {
        let dir = NSTemporaryDirectory() + "medic-story-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        _ = try await store.append(records)
        let stored = try store.records()
        let summary = try #require(IncidentSummary.from(stored).first)
        return IncidentStory(summary, records: stored, now: time(60_000).wallMicroseconds)
    }

    private static func record(_ kind: AuditRecord.Kind, at ms: Int64, step: String? = nil, _ details: [String: String] = [:]) -> AuditRecord {
        AuditRecord(kind: kind, time: time(ms), target: "web.service", incident: 1, playbook: "web", step: step, message: "\(kind.rawValue) \(step ?? "")", details: details)
    }

    @Test("steps are paired intent to result by label; a refusal at the runner ends its step, a guard before it is a marker; notifications, escalations; the pool's states")
    func layout() async throws {
        let story = try await Self.story([
            Self.record(.incidentOpened, at: 10, ["trigger": "unhealthy", "time_to_detect_ms": "10"]),
            Self.record(.stepIntent, at: 10, step: "notify", ["step": "page notify"]),
            Self.record(.stepIntent, at: 11, step: "pool", ["step": "1/4 pool"]),
            Self.record(.stepResult, at: 12, step: "notify", ["step": "page notify", "result": "succeeded"]),
            Self.record(.stepResult, at: 15, step: "pool", ["step": "1/4 pool", "result": "succeeded", "pool_server": "web/s1", "pool_changed": "true",
                                                            "pool_before": "s1 UP (ready, 3 sessions)", "pool_after": "s1 MAINT (maint, 0 sessions)"]),
            Self.record(.guardStopped, at: 16, step: "restart", ["guard": "rate", "result": "refused"]),
            Self.record(.escalation, at: 17),
            Self.record(.stepIntent, at: 20, step: "restart", ["step": "2/4 restart"]),
            Self.record(.guardStopped, at: 21, step: "restart", ["step": "2/4 restart", "guard": "capacity", "result": "refused", "not_run": "true"]),
            Self.record(.stepIntent, at: 30, step: "restart", ["step": "2/4 restart"]),
            Self.record(.stepResult, at: 90, step: "restart", ["step": "2/4 restart", "result": "succeeded"]),
            Self.record(.stepIntent, at: 91, step: "pool", ["step": "3/4 pool"]),
            Self.record(.stepResult, at: 93, step: "pool", ["step": "3/4 pool", "result": "succeeded", "pool_server": "web/s1", "pool_changed": "true",
                                                            "pool_before": "s1 MAINT (maint, 0 sessions)", "pool_after": "s1 UP (ready, 0 sessions)"]),
            Self.record(.stepIntent, at: 94, step: "verify", ["step": "4/4 verify"]),
            Self.record(.stepResult, at: 95, step: "verify", ["result": "interrupted"]),
            Self.record(.incidentClosed, at: 1095, ["outcome": "recovered", "stabilised_ms": "1000", "time_to_recover_ms": "95"]),
        ])
        #expect(story.steps.map(\.name) == ["pool", "restart", "restart", "pool", "verify"])
        #expect(story.steps.map(\.outcome) == ["succeeded", "refused", "succeeded", "succeeded", "interrupted"])
        #expect(story.steps.map { $0.end?.seq } == [5, 9, 11, 13, 15])
        #expect(story.markers.map(\.kind) == [.notification, .guardStop, .escalation])
        #expect(story.impactStart == Self.time(0).wallMicroseconds)
        #expect(story.healthyAgain?.at == Self.time(95).wallMicroseconds)
        // Mitigated when the server was taken out of the pool, 15 ms after the fault.
        #expect(story.mitigated?.seq == 5 && story.timeToMitigateMs == 15)
        #expect(story.timeToDetectMs == 10 && story.timeToRecoverMs == 95)
        #expect(story.pool.map(\.state) == ["ready", "maint", "ready"])
        #expect(story.pool.map { $0.seq } == [nil, 5, 13])
        #expect(story.pool[1].start == Self.time(15).wallMicroseconds && story.pool[1].end == Self.time(93).wallMicroseconds)
        #expect(story.setbacks.map(\.seq) == [6, 9, 15])
    }

    @Test("a remedy whose result came after the target was seen healthy mitigated it by then; an open incident runs to now")
    func mitigationAndOpen() async throws {
        let closed = try await Self.story([
            Self.record(.incidentOpened, at: 5, ["trigger": "crashed", "time_to_detect_ms": "5"]),
            Self.record(.stepIntent, at: 6, step: "restart", ["step": "1/1 restart"]),
            Self.record(.stepResult, at: 40, step: "restart", ["step": "1/1 restart", "result": "succeeded"]),
            Self.record(.incidentClosed, at: 2038, ["outcome": "recovered", "stabilised_ms": "2000", "time_to_recover_ms": "38"]),
        ])
        #expect(closed.mitigated?.at == closed.healthyAgain?.at && closed.timeToMitigateMs == 38)
        let open = try await Self.story([
            Self.record(.incidentOpened, at: 5, ["trigger": "crashed"]),
            Self.record(.stepIntent, at: 6, step: "restart", ["step": "1/1 restart"]),
        ])
        #expect(open.healthyAgain == nil && open.closed == nil && open.mitigated == nil)
        #expect(open.end == Self.time(60_000).wallMicroseconds && open.steps.first?.outcome == "no result")
    }

    @Test("the time axis cuts quiet stretches short and keeps time in order")
    func axis() {
        let ms: Int64 = 1000
        let moments: [Int64] = [0, 10 * ms, 20 * ms, 5000 * ms, 5010 * ms, 3_600_000 * ms]
        let axis = TimeAxis(moments: moments, left: 100, width: 800)
        #expect(axis.pieces.count == 2 && axis.breaks.count == 1, "\(axis.pieces) \(axis.breaks)")
        #expect(axis.breaks[0].quiet == 3_600_000 * ms - 5010 * ms)
        let xs = (0..<3612).map { axis.x(Int64($0) * 997_000 - 5_000) }
        #expect(zip(xs, xs.dropFirst()).allSatisfy { $0 <= $1 }, "x goes back in time")
        #expect(moments.map(axis.x).allSatisfy { $0 >= 100 && $0 <= 900 })
        #expect(TimelineDrawing.roughly(3_600_000 * ms * 3 + 29 * 60_000 * ms + 57_900 * ms) == "3h30m")
        #expect(Markup.escape(#"<a href="x">'&'</a>"#) == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
    }
}
