// swift-tools-version: 6.0
import PackageDescription

// Pipeline layers, lowest first:
//   PacketCore → Wire → Capture / Filters / Defragment / Flows / Reassembly / Classify / Interfaces → Engine → flowtap (CLI)
// SFTapConfig reads SF-TAP YAML configs (Yams); CVectorscan is the Vectorscan (Hyperscan API) shim.
// TrafficGen builds synthetic captures (Wire's builder + Capture's writer).
// CLibpcap is the thin system-library shim for libpcap.
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
        .target(name: "PacketCore"),
        .target(name: "SFTapConfig", dependencies: [.product(name: "Yams", package: "Yams")]),
        .target(name: "Classify", dependencies: ["PacketCore", "CVectorscan"]),
        .target(name: "Interfaces", dependencies: ["PacketCore"]),
        .target(name: "Analyzers", dependencies: [
            "PacketCore", .product(name: "Crypto", package: "swift-crypto"),
            // AES.permute: the single-block AES of QUIC header protection (RFC 9001 §5.4.3).
            .product(name: "_CryptoExtras", package: "swift-crypto"),
        ]),
        .target(name: "Wire", dependencies: ["PacketCore"]),
        .target(name: "Capture", dependencies: ["PacketCore", "CLibpcap"]),
        .target(name: "Filters", dependencies: ["PacketCore", "CLibpcap"]),
        .target(name: "Defragment", dependencies: ["PacketCore", "Wire"]),
        .target(name: "Reassembly", dependencies: ["PacketCore"]),
        .target(name: "Flows", dependencies: ["PacketCore", "Wire"]),
        .target(name: "Engine", dependencies: ["PacketCore", "Wire", "Capture", "Filters", "Defragment", "Reassembly", "Flows", "Classify", "Interfaces", "SFTapConfig", "CShims", "Analyzers"]),
        .target(name: "TrafficGen", dependencies: ["PacketCore", "Wire", "Capture"]),
        .executableTarget(
            name: "flowtap",
            dependencies: [
                "Engine", "Capture", "Filters", "Wire", "PacketCore", "TrafficGen",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
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
        .testTarget(name: "EngineTests", dependencies: ["TestSupport", "Engine", "Capture", "Filters", "Wire", "PacketCore", "TrafficGen"]),
    ],
    swiftLanguageModes: [.v6]
)
