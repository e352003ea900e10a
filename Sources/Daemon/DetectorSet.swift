import Detectors
import Engine
import Logging
import MedicCore
import ServiceLifecycle

/// Runs the detectors of the current `DetectorPlan`, each the same way: restarted in place if
/// it ends (`runResiliently`), its observations handed to the engine with the host's pressure.
/// A reload applies the new plan: a detector whose spec is unchanged keeps running (a probe
/// keeps its counts), a changed one is restarted, a gone one stopped, a new one started.
actor DetectorSet {
    private var running: [String: (spec: DetectorSpec, task: Task<Void, Never>)] = [:]
    private let make: @Sendable (DetectorSpec) -> any Detector
    private let engine: Engine
    private let states: DetectorStates
    private let metrics: MedicMetrics
    private let logger: Logger
    /// A detector that gave up (failed too often): medicd must exit.
    let failures: AsyncStream<ServiceGaveUp>
    private let failed: AsyncStream<ServiceGaveUp>.Continuation

    /// `make` builds the detector for a spec.
    init(engine: Engine, states: DetectorStates, metrics: MedicMetrics, logger: Logger, make: @escaping @Sendable (DetectorSpec) -> any Detector) {
        self.engine = engine
        self.states = states
        self.metrics = metrics
        self.logger = logger
        self.make = make
        (failures, failed) = AsyncStream.makeStream(of: ServiceGaveUp.self)
    }

    /// What applying a plan changed, by detector name.
    struct Change: Equatable {
        var started: [String] = []
        var stopped: [String] = []
        var restarted: [String] = []
        var isEmpty: Bool { started.isEmpty && stopped.isEmpty && restarted.isEmpty }
    }

    /// Makes the running detectors those of `plan`.
    @discardableResult
    func apply(_ plan: DetectorPlan) async -> Change {
        var change = Change()
        let wanted = Dictionary(plan.specs.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        for (key, current) in running where wanted[key] != current.spec {
            await stop(key)
            if wanted[key] != nil { change.restarted.append(key) } else { change.stopped.append(key) }
        }
        for spec in plan.specs where running[spec.key] == nil {
            start(spec)
            if !change.restarted.contains(spec.key) { change.started.append(spec.key) }
        }
        change.started.sort()
        change.stopped.sort()
        change.restarted.sort()
        return change
    }

    /// Stops every detector.
    func stopAll() async {
        for key in running.keys.sorted() { await stop(key) }
        failed.finish()
    }

    private func start(_ spec: DetectorSpec) {
        let detector = make(spec)
        let (name, engine, states, metrics, logger, failed) = (spec.key, engine, states, metrics, logger, failed)
        let task = Task {
            do {
                try await runResiliently(name: name, states: states, metrics: metrics, engine: engine, logger: logger) {
                    try await Self.run(detector, into: engine)
                }
            } catch let gaveUp as ServiceGaveUp {
                failed.yield(gaveUp)
            } catch {}
        }
        running[spec.key] = (spec, task)
    }

    /// Runs `detector`, its observations handed to the engine in order; what it finds while the
    /// engine records the last ones goes together, in one write.
    private static func run(_ detector: any Detector, into engine: Engine) async throws {
        try await Batcher<Observation>.pipe(to: { await engine.handle($0) }) { batcher in
            try await detector.run { observation in batcher.add(observation.withHostPressure()) }
        }
    }

    private func stop(_ key: String) async {
        guard let detector = running.removeValue(forKey: key) else { return }
        detector.task.cancel()
        await detector.task.value
        states.remove(key)
        metrics.detector(key, up: false)
    }
}

/// The detectors as one of medicd's services: starts the first plan, and on shutdown stops
/// every detector; a detector that gave up ends the service with its error, and medicd exits.
struct DetectorService: Service {
    let detectors: DetectorSet
    let plan: DetectorPlan

    func run() async throws {
        await detectors.apply(plan)
        let failures = detectors.failures
        let gaveUp: ServiceGaveUp? = await cancelWhenGracefulShutdown {
            for await failure in failures { return failure }
            return nil
        }
        await detectors.stopAll()
        if let gaveUp { throw gaveUp }
    }
}
