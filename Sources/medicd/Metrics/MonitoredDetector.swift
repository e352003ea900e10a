import ServiceLifecycle

/// Runs a detector's service and keeps `medic_detector_up{detector=NAME}` saying whether it
/// is running: 1 from its start, 0 once it returns or throws.
struct MonitoredDetector<Detector: Service>: Service {
    let name: String
    let detector: Detector
    let metrics: MedicMetrics

    func run() async throws {
        metrics.detector(name, up: true)
        defer { metrics.detector(name, up: false) }
        try await detector.run()
    }
}
