// swift-tools-version:5.9
// Bmxnet for Swift: the runtime's C API (module CBmxnet, a module map over
// mobile/runtime/include/bmxnet/runtime.h plus cbmxnet.c) and a thin Swift class over it
// (BmxnetModel). The runtime itself, C++, comes prebuilt as build/BmxnetRuntime.xcframework:
// run ./build_xcframework.sh (macOS with Xcode and CMake) once before `swift build` or before
// opening the sample app. See README.md.
import PackageDescription

let package = Package(
    name: "Bmxnet",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Bmxnet", targets: ["Bmxnet", "CBmxnet"]),
    ],
    targets: [
        .binaryTarget(name: "BmxnetRuntime", path: "build/BmxnetRuntime.xcframework"),
        .target(name: "CBmxnet", dependencies: ["BmxnetRuntime"], path: "Sources/CBmxnet"),
        .target(name: "Bmxnet", dependencies: ["CBmxnet"], path: "Sources/Bmxnet"),
    ]
)
