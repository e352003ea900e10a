import Foundation
import TestHost

extension TestHost {
    /// Installs medicd as the unit it ships as (units/medic.service), with its playbooks in
    /// `/run/bench/playbooks` and its state in `/run/bench/medic-state` (the test host's /run is
    /// its directory's run/), and without metrics. `MEDIC_COMPARE_UNIT_SETTINGS`, when set, adds
    /// its lines to the unit's `[Service]` (scripts/link-order runs medicd under callgrind, which
    /// needs `MemoryDenyWriteExecute=no`).
    func installMedicUnit(medicd: String) throws {
        try installUnit("medic.service", try String(contentsOfFile: Backend.packageRoot + "/units/medic.service", encoding: .utf8))
        try installUnit("medic.service.d/bench.conf", """
            [Service]
            ExecStart=
            ExecStart=\(medicd) --playbooks /run/bench/playbooks --state /run/bench/medic-state --metrics-listen off
            PrivateTmp=no
            \(ProcessInfo.processInfo.environment["MEDIC_COMPARE_UNIT_SETTINGS"] ?? "")
            """)
    }
}
