import Detectors
import Engine
import MedicCore

extension Engine {
    /// Hands a detector's observation to the engine with the host's pressure at this moment.
    func handleWithHostPressure(_ observation: Observation) async {
        var enriched = observation
        enriched.facts.merge(HostPressure.facts()) { current, _ in current }
        await handle(enriched)
    }
}
