import Audit
import Engine
import ServiceLifecycle

/// Keeps the engine in step with what people write to the audit store through the CLI
/// (`medic silence`, `medic resume`), checking once a second until the control socket comes.
struct HumanCommands: Service {
    let store: AuditStore
    let engine: Engine

    func run() async throws {
        let first = try store.lastSeq()
        do {
            try await cancelWhenGracefulShutdown {
                var seen = first
                while true {
                    if let silences = try? store.silences(now: .now()) { await engine.setSilences(silences) }
                    for resume in (try? store.resumes(after: seen)) ?? [] {
                        seen = max(seen, resume.seq)
                        await engine.resume(resume.target)
                    }
                    try await Task.sleep(for: .seconds(1))
                }
            }
        } catch is CancellationError {
            return
        }
    }
}
