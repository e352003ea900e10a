// swift-tools-version:6.1
import PackageDescription

/// How the daemon is linked in release. Its resident memory is mostly the binary's own pages, so
/// it exports no symbols (nothing loads it as a library), packs its relative relocations (DT_RELR,
/// glibc 2.36: 3 MiB of relocation entries that every start-up read, now 25 KiB), and places the
/// functions it runs first, in the order `scripts/link-order` found (lld reads the file; the
/// release build gives every function a section of its own, `release_build` in scripts/env.sh).
let medicdLinkFlags = [
    "-use-ld=lld",
    "-Xlinker", "--no-export-dynamic",
    "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
    "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/Sources/medicd/link-order.txt",
    "-Xlinker", "--no-warn-symbol-ordering",
]

let package = Package(
    name: "Medic",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "medicd", targets: ["medicd"]),
        .executable(name: "medic", targets: ["medic"]),
        .executable(name: "medic-demo", targets: ["medic-demo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.20.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.60.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.25.0"),
    ],
    targets: [
        // libsystemd, as the system provides it.
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        // Sockets and errno, said once: every socket Medic opens goes through it.
        .target(name: "Posix", dependencies: ["CSpawn"]),
        // The only importer of CSystemd: bus, notify, journal.
        .target(
            name: "Systemd",
            dependencies: ["CSystemd", "Posix"]
        ),
        // Plain domain types shared by every layer.
        .target(name: "MedicCore"),
        // YAML → validated playbook model, with file:line:column errors.
        .target(
            name: "Playbooks",
            dependencies: [
                "MedicCore", "Posix",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The outside world → observations.
        .target(
            name: "Detectors",
            dependencies: [
                "CLinux",
                "MedicCore", "Systemd", "HTTPExchange", "Posix",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // An HTTP request and its whole answer, bounded by one timeout (probes, webhooks, etcd).
        .target(
            name: "HTTPExchange",
            dependencies: [
                "MedicCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Incidents and plans; no I/O of its own.
        .target(
            name: "Engine",
            dependencies: ["MedicCore", .product(name: "Logging", package: "swift-log")]
        ),
        // Runs programs for `exec`: fork, setuid and exec in C, where they are safe to call.
        .target(name: "CSpawn"),
        .target(name: "CLinux"),
        // One executor per step kind.
        .target(
            name: "Actions",
            dependencies: [
                "MedicCore", "Systemd", "CSpawn", "Posix", "HTTPExchange",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // The fleet: hosts registered in etcd v3 under leases, watching each other.
        .target(
            name: "Fleet",
            dependencies: [
                "MedicCore", "HTTPExchange",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // medicd's control socket: the request and answer, and the CLI's client.
        .target(name: "Control", dependencies: ["MedicCore", "Posix"]),
        // Replays a timeline of observations through the real engine on a virtual clock.
        .target(name: "Simulation", dependencies: ["MedicCore", "Engine", "Playbooks"]),
        // The audit log: SQLite through GRDB, and its queries.
        .target(
            name: "Audit",
            dependencies: [
                "MedicCore", "Systemd", "Posix", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // A disposable real systemd for tests and the demo.
        // Post-mortems from the audit log: Markdown, and an HTML page with the timeline drawn.
        .target(name: "Reports", dependencies: ["Audit", "MedicCore"]),
        .target(name: "TestHost", dependencies: ["Systemd", "Audit", "MedicCore", "Posix", "Actions", "CSpawn"], path: "Tools/TestHost"),
        // medicd's logic: settings, assembly, the services it runs (supervisor, detectors,
        // reloader, control socket, metrics, retention, watchdog), incident recovery.
        .target(
            name: "Daemon",
            dependencies: [
                "MedicCore", "Posix", "Systemd", "Playbooks", "Detectors", "Engine", "Actions", "Audit", "Control", "Fleet", "CLinux",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The daemon's command line; runs the Daemon's services in a ServiceGroup.
        .executableTarget(
            name: "medicd",
            dependencies: [
                "Daemon", "MedicCore", "Playbooks", "Posix",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["link-order.txt"],
            linkerSettings: [.unsafeFlags(medicdLinkFlags, .when(configuration: .release))]
        ),
        .executableTarget(
            name: "medic",
                dependencies: [
                "MedicCore", "Playbooks", "Audit", "Reports", "Simulation", "Control", "Systemd", "Posix",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Benchmarks that print figures (scripts/bench builds them in release).
        .executableTarget(
            name: "medic-bench",
            dependencies: ["MedicCore", "Engine", "Playbooks", "Audit", "Detectors", "Posix", .product(name: "Logging", package: "swift-log")],
            path: "Tools/medic-bench"
        ),
        // Medic beside systemd, monit, supervisord and HAProxy on real test hosts (scripts/compare).
        .executableTarget(
            name: "medic-compare",
            dependencies: ["TestHost", "Audit", "MedicCore", "Fleet", "Posix", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/medic-compare"
        ),
        .executableTarget(
            name: "medic-demo",
            dependencies: ["TestHost", "Systemd", "Posix"],
            path: "Tools/medic-demo"
        ),
        .testTarget(name: "PosixTests", dependencies: ["Posix"]),
        .testTarget(name: "PlaybooksTests", dependencies: ["Playbooks", "MedicCore"]),
        .testTarget(name: "DetectorsTests", dependencies: ["Detectors", "Systemd", "Posix", "MedicCore", "Playbooks", "TestHost", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Simulation", "Playbooks", "MedicCore", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "MedicCore", "Playbooks", "Posix", "CLinux", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "FleetTests", dependencies: ["Fleet", "MedicCore", "TestHost"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Audit", "MedicCore"]),
        .testTarget(name: "AuditTests", dependencies: ["Audit", "MedicCore", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["TestHost", "Systemd", "Audit", "MedicCore", "Posix", "Fleet", "Actions", "medicd", "medic", "medic-bench", "medic-compare", .product(name: "GRDB", package: "GRDB.swift")]
        ),
    ]
)
