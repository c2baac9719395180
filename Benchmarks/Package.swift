// swift-tools-version:6.1
// Tern's benchmark executables, a package of their own so that building `tern` does not
// build them. The shell scripts beside this file build them in release mode
// (`swift build -c release --package-path Benchmarks --product NAME`).
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "tern-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "tern", path: ".."),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
    ],
    targets: [
        .executableTarget(
            name: "RewriteBenchmark",
            dependencies: [.product(name: "MailMessage", package: "tern")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "ReportBenchmark",
            dependencies: [.product(name: "MailReports", package: "tern"), .product(name: "MailMessage", package: "tern")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "EngagementStoreBenchmark",
            dependencies: [.product(name: "TernCore", package: "tern"), .product(name: "TernStoreSQLite", package: "tern")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "IntakeCommitBenchmark",
            dependencies: [.product(name: "TernCore", package: "tern"), .product(name: "TernStoreSQLite", package: "tern")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "DKIMBenchmark",
            dependencies: [
                .product(name: "DKIM", package: "tern"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
    ]
)
