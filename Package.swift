// swift-tools-version: 6.0
import PackageDescription

// Modules, lowest first (docs/architecture.md draws the graph):
//   PacketCore → Wire → Capture, Filters, Defragment, Flows, Reassembly (packets, captures, flow state)
//   SFTapConfig (YAML), Classify (Vectorscan rules), SFTapCodec (SF-TAP event headers), UnixSockets (event fan-out)
//   Outputs (JSON records, buffered record files) → Analyzers (HTTP, DNS, TLS, QUIC)
//   RecordModel (the fields every record of a flow shares: flow_id, Community ID, endpoints)
//   FlowCore (one flow engine: packet → fragment → flow → stream → events)
//   Sharding (threads, rings, batches, shard hash)
//   Abstraction (SF-TAP flow abstraction), FlowDispatch (flows to analyzers), CaptureTools (stats, filter, streams)
//   Engine (every pipeline: inputs → shards → flow engine → a sink; the sessions the commands run)
//   Reports (a capture's story as one HTML page of inline SVG)
//   Telemetry (metrics, status JSON and the dashboard over HTTP, on its own thread)
//   flowtap (CLI: parses options, calls Engine); flowtap-bench (benchmarks, beside the product)
// TrafficGen builds synthetic captures (Wire's builder + Capture's writer).
// CLibpcap, CVectorscan, CZlib and CHiredis are system-library shims; CShims holds the C helpers.
let packetPath: [SwiftSetting] = [
    .unsafeFlags(["-cross-module-optimization", "-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "FlowTap",
    products: [
        .executable(name: "flowtap", targets: ["flowtap"]),
        .executable(name: "flowtap-bench", targets: ["flowtap-bench"]),
        .library(name: "PacketCore", targets: ["PacketCore"]),
        .library(name: "Wire", targets: ["Wire"]),
        .library(name: "Capture", targets: ["Capture"]),
        .library(name: "Filters", targets: ["Filters"]),
        .library(name: "Defragment", targets: ["Defragment"]),
        .library(name: "Flows", targets: ["Flows"]),
        .library(name: "Reassembly", targets: ["Reassembly"]),
        .library(name: "Classify", targets: ["Classify"]),
        .library(name: "SFTapConfig", targets: ["SFTapConfig"]),
        .library(name: "SFTapCodec", targets: ["SFTapCodec"]),
        .library(name: "UnixSockets", targets: ["UnixSockets"]),
        .library(name: "Outputs", targets: ["Outputs"]),
        .library(name: "Analyzers", targets: ["Analyzers"]),
        .library(name: "FlowCore", targets: ["FlowCore"]),
        .library(name: "Sharding", targets: ["Sharding"]),
        .library(name: "Abstraction", targets: ["Abstraction"]),
        .library(name: "RecordModel", targets: ["RecordModel"]),
        .library(name: "FlowDispatch", targets: ["FlowDispatch"]),
        .library(name: "CaptureTools", targets: ["CaptureTools"]),
        .library(name: "FlowExport", targets: ["FlowExport"]),
        .library(name: "FlowCollect", targets: ["FlowCollect"]),
        .library(name: "Forwarding", targets: ["Forwarding"]),
        .library(name: "Incubator", targets: ["Incubator"]),
        .library(name: "Telemetry", targets: ["Telemetry"]),
        .library(name: "Reports", targets: ["Reports"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "TrafficGen", targets: ["TrafficGen"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
    ],
    targets: [
        .systemLibrary(name: "CLibpcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
        .systemLibrary(name: "CVectorscan", pkgConfig: "libhs", providers: [.apt(["libvectorscan-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .target(name: "CShims"),
        .target(name: "PacketCore", swiftSettings: packetPath),
        .target(name: "Wire", dependencies: ["PacketCore"], swiftSettings: packetPath),
        .target(name: "Capture", dependencies: ["PacketCore", "CLibpcap", "CZlib", "CShims"], swiftSettings: packetPath),
        .target(name: "Filters", dependencies: ["PacketCore", "CLibpcap"], swiftSettings: packetPath),
        .target(name: "Defragment", dependencies: ["PacketCore", "Wire"], swiftSettings: packetPath),
        .target(name: "Flows", dependencies: ["PacketCore", "Wire"], swiftSettings: packetPath),
        .target(name: "Reassembly", dependencies: ["PacketCore"], swiftSettings: packetPath),
        .target(name: "SFTapConfig", dependencies: ["PacketCore", .product(name: "Yams", package: "Yams")]),
        .target(name: "Classify", dependencies: ["PacketCore", "CVectorscan", "SFTapConfig"], swiftSettings: packetPath),
        .target(name: "SFTapCodec", dependencies: ["PacketCore", "Flows", "CShims"], swiftSettings: packetPath),
        .target(name: "UnixSockets", dependencies: ["PacketCore"], swiftSettings: packetPath),
        .target(name: "Outputs", dependencies: ["PacketCore", "CZlib", "CHiredis"], swiftSettings: packetPath),
        .target(name: "Analyzers", dependencies: [
            "PacketCore", "Outputs", .product(name: "Crypto", package: "swift-crypto"),
            // AES.permute: the single-block AES of QUIC header protection (RFC 9001 §5.4.3).
            .product(name: "_CryptoExtras", package: "swift-crypto"),
        ], swiftSettings: packetPath),
        .target(name: "FlowCore", dependencies: ["PacketCore", "Wire", "Capture", "Defragment", "Flows", "Reassembly"], swiftSettings: packetPath),
        .target(name: "Sharding", dependencies: ["PacketCore", "Wire", "Capture", "Flows"], swiftSettings: packetPath),
        .target(name: "Abstraction", dependencies: ["PacketCore", "Flows", "Reassembly", "FlowCore", "Classify", "SFTapConfig", "SFTapCodec", "UnixSockets", "Sharding"], swiftSettings: packetPath),
        .target(name: "RecordModel", dependencies: ["PacketCore", "Wire", "Flows", "Outputs", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: packetPath),
        .target(name: "FlowDispatch", dependencies: ["PacketCore", "Flows", "FlowCore", "Classify", "SFTapConfig", "SFTapCodec", "Analyzers", "Outputs", "RecordModel"], swiftSettings: packetPath),
        .target(name: "FlowExport", dependencies: ["PacketCore"], swiftSettings: packetPath),
        .target(name: "FlowCollect", dependencies: ["PacketCore", "Wire", "Outputs", "FlowExport", "RecordModel"], swiftSettings: packetPath),
        .target(name: "Incubator", dependencies: ["PacketCore", "Wire", "Capture", "UnixSockets", "CShims", .product(name: "Yams", package: "Yams")], swiftSettings: packetPath),
        .target(name: "Forwarding", dependencies: ["PacketCore", "CShims", .product(name: "Yams", package: "Yams")], swiftSettings: packetPath),
        .target(name: "FlowRecords", dependencies: [
            "PacketCore", "Wire", "FlowExport", "Flows", "Reassembly", "FlowCore", "FlowDispatch", "Outputs", "RecordModel",
        ], swiftSettings: packetPath),
        .target(name: "CaptureTools", dependencies: ["PacketCore", "Wire", "Capture", "Filters", "Flows", "FlowCore", "Outputs", "RecordModel"], swiftSettings: packetPath),
        // `flowtap report`: records reduced to counts and distributions, drawn as one HTML page of inline SVG.
        .target(name: "Reports"),
        // Off the packet path: snapshots the packet threads publish, served over HTTP on its own thread.
        .target(name: "Telemetry", dependencies: [
            "PacketCore", "Outputs",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .target(name: "Engine", dependencies: [
            "PacketCore", "Wire", "Capture", "Filters", "Defragment", "Flows", "Reassembly", "Classify", "SFTapConfig", "SFTapCodec",
            "UnixSockets", "Outputs", "Analyzers", "FlowCore", "Sharding", "Abstraction", "FlowDispatch", "CaptureTools", "FlowRecords",
            "FlowExport", "FlowCollect", "Forwarding", "Incubator", "CShims", "Telemetry", "Reports",
        ], swiftSettings: packetPath),
        .target(name: "TrafficGen", dependencies: ["PacketCore", "Wire", "Capture"], swiftSettings: packetPath),
        .executableTarget(
            name: "flowtap",
            dependencies: [
                "Engine", "Capture", "CaptureTools", "Defragment", "Filters", "FlowCore", "FlowDispatch", "FlowExport", "Incubator", "Outputs", "PacketCore",
                "SFTapConfig", "Reports", "Telemetry", "TrafficGen", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: packetPath
        ),
        // Benchmarks stay out of the product: each stage of the pipeline in process, and peers run as child processes.
        .executableTarget(
            name: "flowtap-bench",
            dependencies: [
                "Engine", "Analyzers", "Abstraction", "Capture", "CaptureTools", "CLibpcap", "Defragment", "FlowCore", "FlowDispatch", "Flows",
                "Outputs", "PacketCore", "Reassembly", "SFTapConfig", "TrafficGen", "Wire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            
            swiftSettings: packetPath
        ),
        // libFuzzer targets for every parser of untrusted bytes (scripts/fuzz.sh builds them with
        // -sanitize=fuzzer,address -DFUZZING); an ordinary build replays saved inputs through them.
        .executableTarget(
            name: "flowtap-fuzz",
            dependencies: ["Abstraction", "Analyzers", "Capture", "FlowCollect", "FlowCore", "Forwarding", "Incubator", "FlowDispatch", "FlowRecords", "PacketCore", "SFTapCodec", "SFTapConfig", "Wire", "Classify", "Reports", "Sharding", "Telemetry"]
        ),
        // Corpus lookup and process helpers shared by the test targets.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "WireTests", dependencies: ["TestSupport", "Wire", "PacketCore"]),
        .testTarget(name: "CaptureTests", dependencies: ["TestSupport", "Capture", "Wire", "PacketCore", "CLibpcap"]),
        .testTarget(name: "FiltersTests", dependencies: ["TestSupport", "Filters", "Capture", "CaptureTools", "Engine", "PacketCore"]),
        .testTarget(name: "DefragmentTests", dependencies: ["TestSupport", "Defragment", "Capture", "Wire", "PacketCore"]),
        .testTarget(name: "TrafficGenTests", dependencies: ["TestSupport", "TrafficGen", "Capture", "Wire", "PacketCore"]),
        .testTarget(name: "FlowsTests", dependencies: ["TestSupport", "Flows", "Reassembly", "Wire", "PacketCore"]),
        .testTarget(name: "ClassifyTests", dependencies: ["TestSupport", "Classify", "SFTapConfig", "PacketCore", "CVectorscan"]),
        .testTarget(name: "UnixSocketsTests", dependencies: ["TestSupport", "UnixSockets", "PacketCore"]),
        .testTarget(name: "SFTapConfigTests", dependencies: ["TestSupport", "SFTapConfig"]),
        .testTarget(name: "AnalyzersTests", dependencies: [
            "TestSupport", "Analyzers", "Outputs", "PacketCore", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "IncubatorTests", dependencies: [
            "TestSupport", "Incubator", "Engine", "Capture", "Wire", "PacketCore", "TrafficGen", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "ForwardingTests", dependencies: ["TestSupport", "Forwarding", "Engine", "PacketCore", "Wire", "Capture"]),
        .testTarget(name: "OutputsTests", dependencies: ["TestSupport", "Outputs", "PacketCore"]),
        .testTarget(name: "TelemetryTests", dependencies: ["TestSupport", "Telemetry", "Reports", "PacketCore"]),
        .testTarget(name: "EngineTests", dependencies: [
            "TestSupport", "Engine", "Abstraction", "FlowDispatch", "CaptureTools", "FlowCore", "Sharding", "SFTapCodec", "Outputs", "CShims",
            "UnixSockets", "SFTapConfig", "Classify", "Capture", "Filters", "Flows", "Defragment", "Reassembly", "Wire", "PacketCore", "TrafficGen",
            "FlowRecords", "FlowExport", "FlowCollect", "RecordModel",
        ], exclude: ["Golden", "Tunnels"]),
    ],
    swiftLanguageModes: [.v6]
)
