// swift-tools-version: 6.0
import PackageDescription

// Pipeline layers, lowest first:
//   PacketCore → Wire → Capture / Filters / Defragment / Flows / Reassembly / Classify / Interfaces → Engine → flowtap (CLI)
// SFTapConfig reads SF-TAP YAML configs (Yams); CVectorscan is the Vectorscan (Hyperscan API) shim.
// TrafficGen builds synthetic captures (Wire's builder + Capture's writer).
// CLibpcap is the thin system-library shim for libpcap.
// Release builds of the packet path optimise across modules (generic engine code specialises into
// the analyzers and outputs it calls) and drop the run-time exclusivity checks on class properties,
// which cost a third of `abstract`'s time per packet in measurement; debug builds, and so the tests,
// keep the checks.
let packetPath: [SwiftSetting] = [
    .unsafeFlags(["-cross-module-optimization", "-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "FlowTap",
    products: [
        .executable(name: "flowtap", targets: ["flowtap"]),
        .library(name: "PacketCore", targets: ["PacketCore"]),
        .library(name: "Wire", targets: ["Wire"]),
        .library(name: "Capture", targets: ["Capture"]),
        .library(name: "Filters", targets: ["Filters"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "TrafficGen", targets: ["TrafficGen"]),
        .library(name: "Defragment", targets: ["Defragment"]),
        .library(name: "Flows", targets: ["Flows"]),
        .library(name: "Reassembly", targets: ["Reassembly"]),
        .library(name: "Classify", targets: ["Classify"]),
        .library(name: "Interfaces", targets: ["Interfaces"]),
        .library(name: "SFTapConfig", targets: ["SFTapConfig"]),
        .library(name: "Analyzers", targets: ["Analyzers"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibpcap",
            pkgConfig: "libpcap",
            providers: [.apt(["libpcap-dev"])]
        ),
        .systemLibrary(
            name: "CVectorscan",
            pkgConfig: "libhs",
            providers: [.apt(["libvectorscan-dev"])]
        ),
        .target(name: "CShims"),
        .target(name: "PacketCore", swiftSettings: packetPath),
        .target(name: "SFTapConfig", dependencies: [.product(name: "Yams", package: "Yams")]),
        .target(name: "Classify", dependencies: ["PacketCore", "CVectorscan"], swiftSettings: packetPath),
        .target(name: "Interfaces", dependencies: ["PacketCore"], swiftSettings: packetPath),
        .target(name: "Analyzers", dependencies: [
            "PacketCore", .product(name: "Crypto", package: "swift-crypto"),
            // AES.permute: the single-block AES of QUIC header protection (RFC 9001 §5.4.3).
            .product(name: "_CryptoExtras", package: "swift-crypto"),
        ], swiftSettings: packetPath),
        .target(name: "Wire", dependencies: ["PacketCore"], swiftSettings: packetPath),
        .target(name: "Capture", dependencies: ["PacketCore", "CLibpcap"], swiftSettings: packetPath),
        .target(name: "Filters", dependencies: ["PacketCore", "CLibpcap"], swiftSettings: packetPath),
        .target(name: "Defragment", dependencies: ["PacketCore", "Wire"], swiftSettings: packetPath),
        .target(name: "Reassembly", dependencies: ["PacketCore"], swiftSettings: packetPath),
        .target(name: "Flows", dependencies: ["PacketCore", "Wire"], swiftSettings: packetPath),
        .target(name: "Engine", dependencies: ["PacketCore", "Wire", "Capture", "Filters", "Defragment", "Reassembly", "Flows", "Classify", "Interfaces", "SFTapConfig", "CShims", "Analyzers"], swiftSettings: packetPath),
        .target(name: "TrafficGen", dependencies: ["PacketCore", "Wire", "Capture"], swiftSettings: packetPath),
        .executableTarget(
            name: "flowtap",
            dependencies: [
                "Engine", "Capture", "Filters", "Wire", "PacketCore", "TrafficGen",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: packetPath
        ),
        // Corpus lookup and process helpers shared by the test targets.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "WireTests", dependencies: ["TestSupport", "Wire", "PacketCore"]),
        .testTarget(name: "CaptureTests", dependencies: ["TestSupport", "Capture", "Wire", "PacketCore", "CLibpcap"]),
        .testTarget(name: "FiltersTests", dependencies: ["TestSupport", "Filters", "Capture", "Engine", "PacketCore"]),
        .testTarget(name: "DefragmentTests", dependencies: ["TestSupport", "Defragment", "Capture", "Wire", "PacketCore"]),
        .testTarget(name: "TrafficGenTests", dependencies: ["TestSupport", "TrafficGen", "Capture", "Wire", "PacketCore"]),
        .testTarget(name: "FlowsTests", dependencies: ["TestSupport", "Flows", "Reassembly", "Wire", "PacketCore"]),
        .testTarget(name: "ClassifyTests", dependencies: ["TestSupport", "Classify", "SFTapConfig", "PacketCore"]),
        .testTarget(name: "InterfacesTests", dependencies: ["TestSupport", "Interfaces", "PacketCore"]),
        .testTarget(name: "SFTapConfigTests", dependencies: ["TestSupport", "SFTapConfig"]),
        .testTarget(name: "AnalyzersTests", dependencies: ["TestSupport", "Analyzers", "PacketCore"]),
        .testTarget(name: "EngineTests", dependencies: ["TestSupport", "Engine", "CShims", "Interfaces", "SFTapConfig", "Capture", "Filters", "Wire", "PacketCore", "TrafficGen"]),
    ],
    swiftLanguageModes: [.v6]
)
